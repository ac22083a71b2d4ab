"""Test environment: two fake CPU devices (so every test exercises sharding), quiet TensorFlow; and
the shared fixtures: the repository root, CLI subprocesses, real MNIST, fake datasets in the real
on-disk layouts (prepared by TFDS's real builders once per session)."""

import os

from helpers import PATIENT_COLLECTIVES  # no JAX import: the environment below is still unread

os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count=2 {PATIENT_COLLECTIVES}"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import functools  # noqa: E402

import helpers  # noqa: E402
import pytest  # noqa: E402

# torchvision before TensorFlow: importing torchvision (which imports triton through torch._dynamo)
# after TensorFlow segfaults in triton's C extension (torch 2.14.1, tensorflow-cpu 2.21, this venv);
# the weights tests build torchvision models in the same process as the data tests' TensorFlow.
import torchvision  # noqa: E402, F401


@pytest.fixture(scope="session")
def root():
    """The repository root (a Path): configs/, benchmarks/, colab/ and the CLI's working directory."""
    return helpers.ROOT


@pytest.fixture(scope="session")
def cli_env():
    """`cli_env(devices=1)`: the environment of a CLI subprocess with `devices` CPU devices."""
    return helpers.cli_env


@pytest.fixture(scope="session")
def run_cli():
    """`run_cli(*args, devices=1, timeout=600, check=True)`: `python -m jaxcnn.main ARGS`, a fresh process."""
    return helpers.run_cli


@pytest.fixture(scope="session")
def mnist_split():
    """Opens the real MNIST test split (prepared by `make data`); fails, never skips, without it."""
    from jaxcnn.data import input as input_lib

    return input_lib.open_split("mnist", "test")


# The fake builds are cached per session, so modules sharing one pay for it once (about a second each).
@functools.cache
def _imagenet(root: str) -> tuple[str, dict]:
    from jaxcnn.data import archives, fake

    facts = fake.write_ilsvrc2012(f"{root}/manual", num_val=6, train_per_class=6)
    archives.prepare_imagenet2012(f"{root}/manual", f"{root}/tfds")
    return f"{root}/tfds", facts


@functools.cache
def _cifar(root: str, name: str) -> tuple[str, dict]:
    from jaxcnn.data import archives, fake

    _, records = fake.write_cifar(f"{root}/raw", name, num_train=20, num_test=7)
    archives.prepare_from_archive(name, f"{root}/raw", f"{root}/tfds", verify=False)  # a fake: no TFDS SHA
    return f"{root}/tfds", records


@pytest.fixture(scope="session")
def fake_imagenet(tmp_path_factory):
    """(TFDS data_dir, facts) of a fake ILSVRC2012: 6 classes x 6 train JPEGs, 6 validation JPEGs."""
    return _imagenet(str(tmp_path_factory.getbasetemp() / "fake_imagenet"))


@pytest.fixture(scope="session")
def fake_cifar10(tmp_path_factory):
    """(TFDS data_dir, records) of a fake CIFAR-10: 20 train and 7 test records."""
    return _cifar(str(tmp_path_factory.getbasetemp() / "fake_cifar"), "cifar10")


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory):
    """The root of a folder dataset: train (2 labels x 6 JPEGs) and test (2 x 5)."""
    from jaxcnn.data import fake

    root = tmp_path_factory.getbasetemp() / "image_folder"
    if not root.exists():
        fake.write_image_folder(root, splits=(("train", 6), ("test", 5)))
    return str(root)
