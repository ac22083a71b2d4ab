"""Input pipelines: whole-split evaluation, deterministic resumable order, process slicing."""

import itertools

import ml_collections
import numpy as np
import pytest

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


def test_unknown_dataset_and_split_are_named():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet21k'.*mnist"):
        input_lib.open_split("imagenet21k", "train")
    with pytest.raises(ValueError, match="no split 'validation'"):
        input_lib.open_split("mnist", "validation")


def test_config_is_a_configdict():
    assert isinstance(_config(), ml_collections.ConfigDict)
