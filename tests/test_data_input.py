"""Input pipelines (jaxcnn/data/input.py): whole-split evaluation, deterministic resumable order,
process slicing; on MNIST, and on JPEG data with augmentation, streamed ranges and every eval protocol."""

import itertools
import shutil

import ml_collections
import numpy as np
import pytest
from helpers import data_config

from configs.base import base_config
from jaxcnn.data import input as input_lib


def _config(batch=32, eval_batch=64, image_size=28):
    c = base_config()
    c.dataset.name = "mnist"
    c.input.image_size, c.input.normalize = image_size, "unit"
    c.batch_size, c.eval_batch_size, c.seed = batch, eval_batch, 7
    return c


@pytest.fixture(scope="module")
def small_split(mnist_split):
    return input_lib.open_split("mnist", "test[:1037]")  # 1,037: no batch size divides it


def _fingerprints(batch):
    return [hash(img.tobytes()) for img, m in zip(batch["image"], batch["mask"]) if m]


@pytest.mark.parametrize("eval_batch,processes", [(64, 1), (100, 1), (64, 2), (96, 3), (2048, 2)])
def test_eval_sees_every_example_exactly_once(small_split, eval_batch, processes):
    config = _config(eval_batch=eval_batch)
    seen, labels = [], []
    for p in range(processes):
        batches = list(input_lib.eval_batches(small_split, config, process_index=p, process_count=processes))
        assert len(batches) == -(-1037 // eval_batch)  # every process: the same number of batches
        for b in batches:
            assert b["image"].shape[0] == eval_batch // processes
            seen += _fingerprints(b)
            labels += list(b["label"][b["mask"] > 0])
    assert len(seen) == 1037
    reference = list(input_lib.eval_batches(small_split, _config(eval_batch=1037)))[0]
    assert sorted(seen) == sorted(_fingerprints(reference))
    assert sorted(labels) == sorted(reference["label"].tolist())


def test_padding_is_zero_and_masked(small_split):
    last = list(input_lib.eval_batches(small_split, _config(eval_batch=100)))[-1]
    assert last["mask"].sum() == 37
    assert not last["image"][37:].any() and not last["mask"][37:].any()


def test_preprocess_pads_into_lenets_field_and_normalises():
    import tensorflow as tf

    image = tf.fill((28, 28, 1), tf.constant(255, tf.uint8))
    out = input_lib.preprocess(image, dataset_name="mnist", image_size=32, normalize="lecun")
    out = out.numpy()
    assert out.shape == (32, 32, 1)
    np.testing.assert_allclose(out[2:30, 2:30], 1.175, rtol=1e-6)
    np.testing.assert_allclose(out[:2], -0.1, rtol=1e-6)


def test_train_order_resumes_exactly_across_epochs(small_split):
    config = _config(batch=100)  # 10 steps per epoch of the 1,037 examples
    full = list(itertools.islice(input_lib.train_batches(small_split, config), 25))
    resumed = list(itertools.islice(input_lib.train_batches(small_split, config, start_step=13), 12))
    for a, b in zip(full[13:], resumed):
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["label"], b["label"])
    # Each epoch is a new permutation without repeats; 37 examples are left out per epoch.
    epoch0 = sum((_fingerprints({**b, "mask": np.ones(100)}) for b in full[:10]), [])
    epoch1 = sum((_fingerprints({**b, "mask": np.ones(100)}) for b in full[10:20]), [])
    assert len(set(epoch0)) == 1000 and epoch0 != epoch1


def test_process_slices_reassemble_the_global_batch(small_split):
    config = _config(batch=96)
    single = list(itertools.islice(input_lib.train_batches(small_split, config), 4))
    parts = [
        list(
            itertools.islice(
                input_lib.train_batches(small_split, config, process_index=p, process_count=3), 4
            )
        )
        for p in range(3)
    ]
    for step in range(4):
        glued = np.concatenate([parts[p][step]["image"] for p in range(3)])
        np.testing.assert_array_equal(glued, single[step]["image"])


def test_config_is_a_configdict():
    assert isinstance(_config(), ml_collections.ConfigDict)


def _take(split, config, steps, **kwargs):
    return list(itertools.islice(input_lib.train_batches(split, config, **kwargs), steps))


def _rows(batch):
    return sorted(im.tobytes() for im in batch["image"])


@pytest.fixture(scope="module")
def imagenet(fake_imagenet):
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
def test_image_folder_eval_covers_the_split_once(image_folder, eval_batch, processes):
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


def test_image_folder_training_resumes_and_shards(image_folder):
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


def test_cifar_training_with_its_augmentation(fake_cifar10):
    data_dir, _ = fake_cifar10
    config = data_config("cifar10", data_dir, batch=5, train_augment="cifar", normalize="standardize")
    split = input_lib.open_split("cifar10", "train", data_dir)
    batches = _take(split, config, 5)
    assert batches[0]["image"].shape == (5, 32, 32, 3)
    # Standardised with CIFAR-10's statistics: a zero (padded) pixel maps to -mean / std.
    mean, std = np.array(input_lib.MEAN_STD["cifar10"])
    padded = np.isclose(batches[0]["image"], -mean / std, atol=1e-5).all(-1)
    assert padded.any()  # some crops reach into the 4-pixel zero padding


def test_an_unreadable_file_is_reported_with_its_path(tmp_path, image_folder):
    root = tmp_path / "folder"
    shutil.copytree(image_folder, root)
    bad = root / "test" / "dog" / "dog_002.jpg"
    bad.write_bytes(b"this is not an image")
    config = data_config("image_folder", eval_batch=4)
    config.dataset.folder = str(root)
    split = input_lib.split_from_config(config, "test")
    with pytest.raises(ValueError, match=f"unreadable image file {bad}"):
        list(input_lib.eval_batches(split, config, protocol="center"))


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
