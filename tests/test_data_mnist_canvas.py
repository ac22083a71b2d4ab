"""mnist_canvas (jaxcnn/data/mnist_canvas.py): built deterministically from real MNIST, labels that
match the digits' pixels, the segmentation folder layout, and the prepare command."""

import json

import numpy as np
import pytest
from PIL import Image

from jaxcnn.data import mnist_canvas, prepare, segmentation


@pytest.fixture(scope="module")
def mnist_test():
    """Real MNIST's test split, read through TFDS once for the module."""
    return mnist_canvas.load_mnist("test")


@pytest.fixture(scope="module")
def mnist(mnist_test):
    """The sources prepare reads: the test split stands in for the train split (decoding MNIST's
    60,000 training PNGs takes long); test_prepare_command checks which split each one reads."""
    return {"train": mnist_test, "test": mnist_test}


@pytest.fixture(scope="module")
def small(tmp_path_factory, mnist):
    """A prepared mnist_canvas: 5 train and 4 test canvases."""
    root = tmp_path_factory.mktemp("canvas") / "mnist_canvas"
    return mnist_canvas.prepare(root, num_train=5, num_test=4, sources=mnist)


def read(root, split, sub, i):
    return np.asarray(Image.open(root / split / sub / f"{i:05d}.png"))


def test_labels_match_the_digits_pixels(mnist_test):
    images, labels = mnist_test
    for i in range(30):
        image, mask, inst, placed = mnist_canvas.canvas(images, labels, 0, "test", i)
        assert 2 <= len(placed) <= 4
        # Foreground exactly where the canvas is ink (> 127): pixels combine by maximum.
        np.testing.assert_array_equal(mask > 0, image > mnist_canvas.THRESHOLD)
        np.testing.assert_array_equal(mask > 0, inst > 0)
        covered = np.zeros(mask.shape, bool)  # pixels claimed by later digits
        for k in range(len(placed), 0, -1):  # the last digit placed is on top
            source, y, x = placed[k - 1]
            fg = np.zeros(mask.shape, bool)
            fg[y : y + 28, x : x + 28] = images[source] > mnist_canvas.THRESHOLD
            mine = fg & ~covered
            np.testing.assert_array_equal(inst == k, mine)
            assert np.all(mask[mine] == 1 + labels[source])
            covered |= fg


def test_some_digits_overlap(mnist_test):
    images, labels = mnist_test
    occluded = 0
    for i in range(40):
        _, _, inst, placed = mnist_canvas.canvas(images, labels, 0, "test", i)
        for k, (source, _, _) in enumerate(placed, start=1):
            ink = int((images[source] > mnist_canvas.THRESHOLD).sum())
            occluded += int((inst == k).sum()) < ink
    assert occluded > 0


def test_prepare_writes_the_folder_layout(small):
    assert (small / "classes.txt").read_text().split() == ["background", *map(str, range(10))]
    for split, count in (("train", 5), ("test", 4)):
        for sub in ("images", "masks", "instances"):
            assert sorted(p.name for p in (small / split / sub).iterdir()) == [
                f"{i:05d}.png" for i in range(count)
            ]
    assert read(small, "train", "images", 0).shape == (64, 64)
    config = json.loads((small / "prepared.json").read_text())
    assert config["counts"] == {"train": 5, "test": 4} and config["seed"] == 0


def test_prepare_is_deterministic_and_a_prefix_of_larger_counts(small, tmp_path, mnist, mnist_test):
    other = mnist_canvas.prepare(tmp_path / "c", num_train=3, num_test=6, sources=mnist)
    for split, count in (("train", 3), ("test", 4)):
        for i in range(count):
            for sub in ("images", "masks", "instances"):
                np.testing.assert_array_equal(read(other, split, sub, i), read(small, split, sub, i))
    # Test canvases come from MNIST's test split.
    images, labels = mnist_test
    image, mask, inst, _ = mnist_canvas.canvas(images, labels, 0, "test", 2)
    np.testing.assert_array_equal(read(small, "test", "images", 2), image)
    np.testing.assert_array_equal(read(small, "test", "masks", 2), mask)


def test_prepare_skips_a_complete_dataset_and_rebuilds_other_settings(small, tmp_path, mnist):
    stamp = (small / "prepared.json").stat().st_mtime_ns
    assert mnist_canvas.prepare(small, num_train=5, num_test=4) == small  # would load MNIST otherwise
    assert (small / "prepared.json").stat().st_mtime_ns == stamp
    root = mnist_canvas.prepare(tmp_path / "d", num_train=2, num_test=2, sources=mnist)
    mnist_canvas.prepare(root, num_train=3, num_test=2, sources=mnist)
    assert len(list((root / "train" / "images").iterdir())) == 3
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "keep.txt").write_text("not a canvas")
    with pytest.raises(ValueError, match="exists and is not a complete mnist_canvas"):
        mnist_canvas.prepare(tmp_path / "mine", num_train=2, num_test=2, sources=mnist)


def test_the_pipeline_reads_it(small):
    from configs.base import base_config

    config = base_config()
    config.dataset.name, config.dataset.folder = "mnist_canvas", str(small)
    split = segmentation.open_split(config, "test")
    assert (split.num_examples, split.num_classes, split.channels) == (4, 11, 1)
    assert split.instances is not None and split.class_names[1] == "0"
    np.testing.assert_array_equal(split.masks[1], read(small, "test", "masks", 1))


def test_prepare_command(tmp_path, capsys, monkeypatch, mnist_test):
    """Train canvases come from MNIST's train split, test canvases from its test split."""
    read = []

    def load(split, data_dir=None):
        read.append((split, data_dir))
        return mnist_test

    monkeypatch.setattr(mnist_canvas, "load_mnist", load)
    out = tmp_path / "cli"
    args = ["mnist_canvas", "--num_train", "2", "--num_test", "3", "--out", str(out), "--data_dir", "/d"]
    assert prepare.main(args) == 0
    assert f"ready in {out}" in capsys.readouterr().out
    assert read == [("train", "/d"), ("test", "/d")]
    assert len(list((out / "test" / "masks").iterdir())) == 3
    assert prepare.main(["mnist_canvas", "--num_train", "0", "--out", str(out)]) == 2
    assert "num_train must be a positive int, got 0" in capsys.readouterr().err
