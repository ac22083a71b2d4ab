"""TFDS + tf.data input pipelines: deterministic, resumable, sharded over processes.

The order of training examples is a pure function of (seed, epoch): each epoch shuffles the split
with its own seed, so a run restored at step s regenerates exactly the batches it would have seen,
skipping the examples before s without decoding them. Element i of an epoch belongs to global batch
i // B; process p of P takes the p-th contiguous slice of every global batch, so the global batch is
the same whatever the number of processes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator

import numpy as np

# Datasets with a known preprocessing; the key is the TFDS name.
SUPPORTED = ("mnist", "fashion_mnist")
# Per-dataset pixel statistics on [0, 1] images, for "standardize".
MEAN_STD = {"mnist": (0.1307, 0.3081), "fashion_mnist": (0.2860, 0.3530)}
NORMALIZATIONS = ("lecun", "standardize", "unit")


@dataclasses.dataclass(frozen=True)
class Split:
    """A prepared TFDS split and its facts."""

    builder: object  # tfds.core.DatasetBuilder
    split: str
    num_examples: int
    num_classes: int


def open_split(dataset_name: str, split: str, data_dir: str | None = None) -> Split:
    """Opens a prepared TFDS split; raises a one-line error when it is missing or unknown.

    Online, a missing dataset is downloaded by TFDS as usual; offline, the error names the command
    that prepares it from local files.
    """
    if dataset_name not in SUPPORTED:
        raise ValueError(f"unknown dataset {dataset_name!r}; supported: {', '.join(SUPPORTED)}")
    import tensorflow_datasets as tfds

    from jaxcnn.data import prepare

    builder = tfds.builder(dataset_name, data_dir=data_dir)
    if not builder.is_prepared():
        if not prepare.is_online():
            raise FileNotFoundError(
                f"dataset {dataset_name!r} is not prepared in {builder.data_dir_root} and there is "
                f"no internet; run: python -m jaxcnn.data.prepare {dataset_name}"
                + (f" --data_dir {data_dir}" if data_dir else "")
            )
        builder.download_and_prepare()
    splits = builder.info.splits
    try:
        num_examples = splits[split].num_examples  # also takes TFDS slices such as "train[:10%]"
    except (KeyError, ValueError) as e:
        raise ValueError(f"dataset {dataset_name!r} has no split {split!r}; has {list(splits)}") from e
    if num_examples == 0:
        raise ValueError(f"split {split!r} of {dataset_name!r} is empty")
    num_classes = builder.info.features["label"].num_classes
    return Split(builder, split, num_examples, num_classes)


def preprocess(image, *, dataset_name: str, image_size: int, normalize: str):
    """uint8 HxWxC -> float32 image_size x image_size x C, padded (centred) and normalised."""
    import tensorflow as tf

    image = tf.cast(image, tf.float32) / 255.0
    height = image.shape[0]
    if image_size != height:
        # LeNet-5 sees the 28x28 digit in a 32x32 field (Sec. III-A): pad, never resize.
        pad = image_size - height
        image = tf.pad(image, [[pad // 2, pad - pad // 2], [pad // 2, pad - pad // 2], [0, 0]])
    if normalize == "lecun":
        # Background -0.1, ink 1.175: mean about 0 and variance about 1 (Sec. II-A).
        return image * 1.275 - 0.1
    if normalize == "standardize":
        mean, std = MEAN_STD[dataset_name]
        return (image - mean) / std
    return image


def _base(split: Split, config, cache: bool = False):
    import tensorflow as tf

    ds = split.builder.as_dataset(split=split.split, shuffle_files=False)
    ds = ds.map(lambda ex: (ex["image"], tf.cast(ex["label"], tf.int32)))
    # Training reads every example each epoch: keep small splits decoded in memory. Evaluation
    # reads once per call and may stop early (a notebook's first batch), so it does not cache.
    return ds.cache() if cache and split.num_examples <= config.input.cache_max_examples else ds


def _process_slice(ds, local_batch: int, process_index: int, process_count: int):
    # Element i goes to global batch i // (local_batch * P), slice (i // local_batch) % P.
    return ds.filter(lambda i, _x, _y: (i // local_batch) % process_count == process_index)


def train_batches(
    split: Split, config, *, start_step: int = 0, process_index: int = 0, process_count: int = 1
) -> Iterator[dict[str, np.ndarray]]:
    """Yields this process's share of every global training batch, from `start_step` on, forever.

    Args:
      split: the training split.
      config: the experiment config (uses batch_size, seed, dataset, input).
      start_step: the first step to yield (a restored run's step).

    Yields:
      {"image": float32 (B/P, H, W, C), "label": int32 (B/P,)}.
    """
    import tensorflow as tf

    global_batch = config.batch_size
    local_batch = global_batch // process_count
    steps_per_epoch = split.num_examples // global_batch
    ds_all = _base(split, config, cache=True)
    prep = _preprocessor(config)
    epoch, skip = divmod(start_step, steps_per_epoch)
    while True:
        seed = int(np.random.SeedSequence([config.seed, epoch]).generate_state(1)[0])
        ds = ds_all.shuffle(
            min(config.input.shuffle_buffer, split.num_examples),
            seed=seed,
            reshuffle_each_iteration=False,
        ).take(steps_per_epoch * global_batch)  # drop the last partial global batch
        ds = ds.enumerate().map(lambda i, xy: (i, xy[0], xy[1]))
        first = skip * global_batch  # a restored run: skip, without decoding, what was seen
        ds = ds.filter(lambda i, _x, _y, first=first: i >= first)
        ds = _process_slice(ds, local_batch, process_index, process_count)
        ds = ds.map(lambda _i, x, y: (prep(x), y), num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.batch(local_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
        for image, label in ds.as_numpy_iterator():
            yield {"image": image, "label": label}
        epoch, skip = epoch + 1, 0


def eval_batches(
    split: Split, config, *, protocol: str = "center", process_index: int = 0, process_count: int = 1
) -> Iterator[dict[str, np.ndarray]]:
    """Yields the whole split once in this process's share of padded global eval batches.

    Every process yields ceil(N / B) batches of B / P examples; padding has `mask` 0, so each
    example is counted exactly once and none is dropped.
    """
    import tensorflow as tf

    global_batch = config.eval_batch_size
    local_batch = global_batch // process_count
    ds = _base(split, config).enumerate().map(lambda i, xy: (i, xy[0], xy[1]))
    ds = _process_slice(ds, local_batch, process_index, process_count)
    prep = _preprocessor(config)
    size, channels = config.input.image_size, split.builder.info.features["image"].shape[-1]
    ds = ds.map(lambda _i, x, y: (prep(x), y), num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(local_batch).prefetch(tf.data.AUTOTUNE)
    batches = ds.as_numpy_iterator()
    for _ in range(math.ceil(split.num_examples / global_batch)):
        image, label = next(batches, (None, None))
        padded = _pad(image, label, local_batch, shape=(size, size, channels))
        padded["views"] = (padded.pop("image")[:, None],)
        yield padded


def _pad(image, label, batch: int, shape) -> dict[str, np.ndarray]:
    if image is None:  # this process has no examples left in the final global batch
        image, label = np.zeros((0, *shape), np.float32), np.zeros((0,), np.int32)
    n = image.shape[0]
    mask = np.zeros((batch,), np.float32)
    mask[:n] = 1.0
    pad = [(0, batch - n)] + [(0, 0)] * (image.ndim - 1)
    return {"image": np.pad(image, pad), "label": np.pad(label, (0, batch - n)), "mask": mask}


def _preprocessor(config):
    name, size, norm = config.dataset.name, config.input.image_size, config.input.normalize
    return lambda image: preprocess(image, dataset_name=name, image_size=size, normalize=norm)
