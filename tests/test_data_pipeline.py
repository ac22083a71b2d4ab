"""Pipelines on JPEG data: resume exactness with augmentation, process sharding, whole-split eval, errors."""

import itertools
import shutil

import numpy as np
import pytest
from data_fixtures import data_config, fake_cifar10, fake_imagenet, image_folder  # noqa: F401

from jaxcnn.data import input as input_lib


def _take(split, config, steps, **kwargs):
    return list(itertools.islice(input_lib.train_batches(split, config, **kwargs), steps))


def _rows(batch):
    return sorted(im.tobytes() for im in batch["image"])


@pytest.fixture(scope="module")
def imagenet(fake_imagenet):  # noqa: F811
    data_dir, _ = fake_imagenet
    return data_dir, input_lib.open_split("imagenet2012", "train", data_dir)


def _streamed_config(data_dir, **keys):
    # cache_max_examples 0: the 36-image split is streamed in 6 ranges, as ImageNet would be.
    keys = {"batch": 6, "cache_max_examples": 0, "shuffle_buffer": 12, **keys}
    return data_config("imagenet2012", data_dir, **keys)


def test_streamed_resume_sees_exactly_the_uninterrupted_examples(imagenet):
    data_dir, split = imagenet
    config = _streamed_config(
        data_dir, train_augment="inception_crop", extra_augment="rotate(10),noise(0.05)"
    )
    full = _take(split, config, 14)  # 6 steps per epoch: crosses two epoch boundaries
    resumed = _take(split, config, 6, start_step=8)
    for a, b in zip(full[8:], resumed):
        np.testing.assert_array_equal(a["image"], b["image"])  # augmentation included
        np.testing.assert_array_equal(a["label"], b["label"])
    assert not np.array_equal(full[0]["image"], full[6]["image"])


def test_streamed_epoch_is_a_permutation_that_changes_each_epoch(imagenet):
    data_dir, split = imagenet
    config = _streamed_config(data_dir)  # no augmentation: an image's pixels identify it
    batches = _take(split, config, 12)
    epoch0 = [row for b in batches[:6] for row in _rows(b)]
    epoch1 = [row for b in batches[6:] for row in _rows(b)]
    assert len(set(epoch0)) == 36 and sorted(epoch0) == sorted(epoch1)
    assert [_rows(b) for b in batches[:6]] != [_rows(b) for b in batches[6:]]


@pytest.mark.parametrize("processes", [2, 3])
def test_streamed_global_batches_do_not_depend_on_the_process_count(imagenet, processes):
    data_dir, split = imagenet
    config = _streamed_config(data_dir, train_augment="alexnet")
    single = _take(split, config, 7)  # 6 steps per epoch: into the second epoch
    parts = [_take(split, config, 7, process_index=p, process_count=processes) for p in range(processes)]
    for step in range(7):
        assert all(part[step]["image"].shape[0] == 6 // processes for part in parts)
        glued = {"image": np.concatenate([part[step]["image"] for part in parts])}
        assert _rows(glued) == _rows(single[step])


def test_streamed_process_count_must_divide_the_shards(imagenet):
    data_dir, split = imagenet
    with pytest.raises(ValueError, match="num_shards=6 must be a multiple of the 4 processes"):
        next(input_lib.train_batches(split, _streamed_config(data_dir, batch=8), process_count=4))


@pytest.mark.parametrize("protocol", ["center", "ten_crop", "multi_scale", "crops144"])
@pytest.mark.parametrize("processes", [1, 2])
def test_streamed_eval_sees_every_example_exactly_once(imagenet, protocol, processes):
    data_dir, _ = imagenet
    split = input_lib.open_split("imagenet2012", "train", data_dir)
    config = _streamed_config(data_dir, batch=4)
    config.eval_batch_size = 8  # 36 examples: 5 batches, the last one half padding
    labels, rows = [], []
    for p in range(processes):
        batches = list(
            input_lib.eval_batches(split, config, protocol=protocol, process_index=p, process_count=processes)
        )
        assert len(batches) == 5  # ceil(36 / 8); with 2 processes ceil(18 / 4)
        for b in batches:
            shapes = [v.shape for v in b["views"]]
            expected = {"center": 1, "ten_crop": 10, "multi_scale": 2, "crops144": 144}[protocol]
            assert all(s[0] == 8 // processes and s[1] == expected for s in shapes)
            real = b["mask"] > 0
            assert not any(v[~real].any() for v in b["views"])  # padding is zero
            labels += b["label"][real].tolist()
            rows += [v.tobytes() for v in b["views"][0][real]]
    assert len(rows) == 36 and len(set(rows)) == 36
    assert np.bincount(labels, minlength=1000).max() == 6  # 6 classes x 6 images, each once


@pytest.mark.parametrize("eval_batch,processes", [(4, 1), (3, 1), (4, 2), (16, 2)])
def test_image_folder_eval_covers_the_split_once(image_folder, eval_batch, processes):  # noqa: F811
    config = data_config("image_folder", eval_batch=eval_batch)
    config.dataset.folder = image_folder
    split = input_lib.split_from_config(config, "test")
    assert (split.num_examples, split.num_classes) == (10, 2)
    rows, labels = [], []
    for p in range(processes):
        for b in input_lib.eval_batches(
            split, config, protocol="ten_crop", process_index=p, process_count=processes
        ):
            real = b["mask"] > 0
            rows += [v.tobytes() for v in b["views"][0][real]]
            labels += b["label"][real].tolist()
    assert len(rows) == 10 and len(set(rows)) == 10 and sorted(labels) == [0] * 5 + [1] * 5


def test_image_folder_training_resumes_and_shards(image_folder):  # noqa: F811
    config = data_config("image_folder", batch=4, train_augment="vgg_scale_jitter", extra_augment="color")
    config.dataset.folder = image_folder
    split = input_lib.split_from_config(config, "train")
    full = _take(split, config, 7)  # 3 steps per epoch of 12 images
    for a, b in zip(full[4:], _take(split, config, 3, start_step=4)):
        np.testing.assert_array_equal(a["image"], b["image"])
    halves = [_take(split, config, 4, process_index=p, process_count=2) for p in range(2)]
    for step in range(4):
        np.testing.assert_array_equal(
            np.concatenate([halves[0][step]["image"], halves[1][step]["image"]]), full[step]["image"]
        )


def test_cifar_training_with_its_augmentation(fake_cifar10):  # noqa: F811
    data_dir, _ = fake_cifar10
    config = data_config("cifar10", data_dir, batch=5, train_augment="cifar", normalize="standardize")
    split = input_lib.open_split("cifar10", "train", data_dir)
    batches = _take(split, config, 5)
    assert batches[0]["image"].shape == (5, 32, 32, 3)
    # Standardised with CIFAR-10's statistics: a zero (padded) pixel maps to -mean / std.
    mean, std = np.array(input_lib.MEAN_STD["cifar10"])
    padded = np.isclose(batches[0]["image"], -mean / std, atol=1e-5).all(-1)
    assert padded.any()  # some crops reach into the 4-pixel zero padding


def test_an_unreadable_file_is_reported_with_its_path(tmp_path, image_folder):  # noqa: F811
    root = tmp_path / "folder"
    shutil.copytree(image_folder, root)
    bad = root / "test" / "dog" / "dog_002.jpg"
    bad.write_bytes(b"this is not an image")
    config = data_config("image_folder", eval_batch=4)
    config.dataset.folder = str(root)
    split = input_lib.split_from_config(config, "test")
    with pytest.raises(ValueError, match=f"unreadable image file {bad}"):
        list(input_lib.eval_batches(split, config, protocol="center"))


def test_empty_and_missing_splits_and_folders(tmp_path):
    (tmp_path / "train" / "cat").mkdir(parents=True)
    (tmp_path / "train" / "cat" / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match="split 'train' of image folder .* is empty"):
        input_lib.open_split("image_folder", "train", folder=str(tmp_path))
    with pytest.raises(ValueError, match="has no split 'test'"):
        input_lib.open_split("image_folder", "test", folder=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="image folder '/nonexistent' does not exist"):
        input_lib.open_split("image_folder", "train", folder="/nonexistent")
    with pytest.raises(ValueError, match="needs config.dataset.folder"):
        input_lib.open_split("image_folder", "train")


def test_a_dataset_with_unusable_images_is_rejected_when_opened():
    from jaxcnn.data import datasets

    datasets.check_image_spec((28, 28, 1), np.uint8, "dataset 'mnist'")  # fine
    for shape, dtype in (((28, 28), np.uint8), ((32, 32, 4), np.uint8), ((32, 32, 3), np.float32)):
        with pytest.raises(ValueError, match=r"dataset 'x' has images of shape .* expected uint8 \(height"):
            datasets.check_image_spec(shape, dtype, "dataset 'x'")


def test_mnist_eval_views_match_the_trainers_batches(mnist_split):
    config = data_config("mnist", eval_batch=250)
    config.input.image_size, config.input.normalize = 32, "lecun"
    split = input_lib.open_split("mnist", "test[:600]")
    legacy = list(input_lib.eval_batches(split, config))
    viewed = list(input_lib.eval_batches(split, config, protocol="center"))
    assert len(legacy) == len(viewed) == 3
    for a, b in zip(legacy, viewed):
        assert b["views"][0].shape == (250, 1, 32, 32, 1)
        np.testing.assert_array_equal(a["image"], b["views"][0][:, 0])
        np.testing.assert_array_equal(a["mask"], b["mask"])
