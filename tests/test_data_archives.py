"""Preparation from a dataset's own archives (jaxcnn/data/archives.py) by TFDS's real builders, fed
the fakes of jaxcnn/data/fake.py: ILSVRC2012 tars, CIFAR and Imagenette archives, a foreign archive."""

import tarfile

import numpy as np
import pytest
from helpers import data_config

from jaxcnn.data import archives, fake
from jaxcnn.data import input as input_lib


def test_fake_ilsvrc2012_has_the_real_tar_layout(tmp_path):
    facts = fake.write_ilsvrc2012(tmp_path, num_val=4, train_per_class=2)
    with tarfile.open(tmp_path / "ILSVRC2012_img_train.tar") as train:
        assert sorted(train.getnames()) == [f"{s}.tar" for s in facts["classes"]]
        inner = tarfile.open(fileobj=train.extractfile(f"{facts['classes'][0]}.tar"))
        assert inner.getnames() == [f"{facts['classes'][0]}_{k}.JPEG" for k in (1, 2)]
        assert inner.extractfile(inner.getnames()[0]).read()[:2] == b"\xff\xd8"  # a JPEG
    with tarfile.open(tmp_path / "ILSVRC2012_img_val.tar") as val:
        assert val.getnames() == [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(1, 5)]


def test_real_imagenet2012_builder_prepares_the_fake(fake_imagenet):
    import tensorflow_datasets as tfds

    data_dir, facts = fake_imagenet
    train = input_lib.open_split("imagenet2012", "train", data_dir)
    val = input_lib.open_split("imagenet2012", "validation", data_dir)
    assert (train.num_examples, val.num_examples) == (facts["num_train"], facts["num_val"])
    assert train.num_classes == 1000 and train.encoded and train.channels == 3
    names = train.builder.info.features["label"].names
    # Validation labels are TFDS's own (validation_labels.txt), and the fake's classes match them.
    for ex in tfds.as_numpy(val.builder.as_dataset(split="validation")):
        assert names[ex["label"]] == facts["val_labels"][ex["file_name"].decode()]
    train_labels = {names[ex["label"]] for ex in tfds.as_numpy(train.builder.as_dataset(split="train"))}
    assert train_labels == set(facts["classes"])


def test_real_cifar10_builder_reads_the_fake_archive(fake_cifar10):
    import tensorflow_datasets as tfds

    data_dir, records = fake_cifar10
    for split in ("train", "test"):
        ds = tfds.as_numpy(tfds.load("cifar10", split=split, data_dir=data_dir, download=False))
        ours = sorted((ex["image"].tobytes(), int(ex["label"])) for ex in ds)
        assert ours == sorted((image.tobytes(), label) for label, image in records[split])


def test_cifar_records_decode_to_the_written_pixels(fake_cifar10):
    data_dir, records = fake_cifar10
    split = input_lib.open_split("cifar10", "test", data_dir)
    assert split.image_shape == (32, 32, 3) and not split.encoded and split.num_classes == 10

    (batch,) = list(input_lib.eval_batches(split, data_config("cifar10", data_dir, eval_batch=8)))
    got = sorted(
        (np.round(im * 255).astype(np.uint8).tobytes(), int(label))
        for im, label, m in zip(batch["image"], batch["label"], batch["mask"])
        if m
    )
    assert got == sorted((image.tobytes(), label) for label, image in records["test"])


def test_real_imagenette_builder_reads_the_fake_archive(tmp_path):
    fake.write_imagenette(tmp_path / "raw", per_class=2)
    archives.prepare_from_archive("imagenette", tmp_path / "raw", str(tmp_path / "tfds"), verify=False)
    train = input_lib.open_split("imagenette", "train", str(tmp_path / "tfds"))
    val = input_lib.open_split("imagenette", "validation", str(tmp_path / "tfds"))
    assert (train.num_examples, val.num_examples, train.num_classes) == (20, 10, 10)
    assert train.encoded and input_lib.MEAN_STD["imagenette"] == input_lib.MEAN_STD["imagenet2012"]


def test_an_archive_that_is_not_tfds_s_is_rejected(tmp_path):
    fake.write_cifar(tmp_path / "raw", "cifar10", num_train=5, num_test=5)
    with pytest.raises(ValueError, match="cifar-10-binary.tar.gz: SHA-256 is not .*c4a38c50"):
        archives.prepare_from_archive("cifar10", tmp_path / "raw", str(tmp_path / "tfds"))
