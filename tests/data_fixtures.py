"""Fake datasets in the real on-disk layouts, prepared by TFDS's real builders, once per session.

Test modules import the fixtures they use (`from data_fixtures import fake_imagenet`); the builds
are cached per session, so modules sharing one pay for it once (about a second each).
"""

import functools

import pytest

from configs.base import base_config
from jaxcnn.data import archives, fake


@functools.cache
def _imagenet(root: str) -> tuple[str, dict]:
    facts = fake.write_ilsvrc2012(f"{root}/manual", num_val=6, train_per_class=6)
    archives.prepare_imagenet2012(f"{root}/manual", f"{root}/tfds")
    return f"{root}/tfds", facts


@functools.cache
def _cifar(root: str, name: str) -> tuple[str, dict]:
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
    root = tmp_path_factory.getbasetemp() / "image_folder"
    if not root.exists():
        fake.write_image_folder(root, splits=(("train", 6), ("test", 5)))
    return str(root)


def data_config(name, data_dir="", *, size=32, batch=4, eval_batch=4, **input_keys):
    """A small config for dataset `name`: configs.base.base_config() with `input_keys` set."""
    c = base_config()
    c.dataset.name, c.dataset.data_dir = name, data_dir
    c.input.image_size, c.input.normalize = size, "unit"
    c.batch_size, c.eval_batch_size, c.seed = batch, eval_batch, 5
    c.input.train_augment, c.input.extra_augment, c.input.num_shards = "none", "", 6
    for key, value in input_keys.items():
        c.input[key] = value
    c.eval.crop_ratio, c.eval.scales = 0.875, (24, 32, 40)
    return c
