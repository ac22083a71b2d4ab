"""TFDS + tf.data input pipelines: deterministic, resumable, sharded over processes.

The order of training examples is a pure function of (seed, epoch), and so is each example's
augmentation (seeded by (seed, epoch, index in the epoch), see augment.py): a run restored at step s
regenerates exactly the batches it would have seen, skipping the examples before s without decoding
them. Two ways to read a split, chosen by its size:

In memory (splits of up to config.input.cache_max_examples records, and every image folder, whose
records are file names): each epoch is a seeded permutation of the whole split. Element i of an
epoch belongs to global batch i // B; process p of P takes the p-th contiguous slice of every global
batch (reading the small split and keeping its share), so the global batch is the same, in the same
order, whatever the number of processes.

Streamed (larger TFDS splits, e.g. ImageNet): the split is cut into V = config.input.num_shards
contiguous ranges of TFDS's (already hash-shuffled) record order. Each epoch, range v is read from a
seeded random offset, wrapping around, through a seeded shuffle buffer of
config.input.shuffle_buffer / V records; the epoch's element j is element j // V of range j % V.
Process p reads only the ranges v = p (mod P) and yields the elements j = p (mod P), so every global
batch holds the same examples whatever P (a divisor of V), in an order that depends on P only within
the batch, which a data-parallel step does not see. A restored run replays the skipped records of
each of its ranges (reading, not decoding, them) to rebuild the shuffle buffers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator

import numpy as np

from jaxcnn import durations
from jaxcnn.data import augment, image_ops, views
from jaxcnn.data.datasets import (  # noqa: F401
    BAD_EXAMPLE_POLICIES,
    MEAN_STD,
    SUPPORTED,
    Split,
    check_name,
    open_split,
)
from jaxcnn.data.image_ops import NORMALIZATIONS  # noqa: F401


def check_config(config, process_count: int = 1) -> None:
    """Checks config.dataset, config.input and config.eval before anything is opened or compiled.

    One ValueError naming the bad value and what is allowed; opening the split checks the rest
    (a missing dataset, an image folder's root, the split's name).
    """
    check_name(config.dataset.name)
    inp = config.input
    augment.recipe(inp.train_augment, inp.extra_augment)  # names an unknown preset or op
    if inp.normalize not in NORMALIZATIONS:
        raise ValueError(f"config.input.normalize={inp.normalize!r}; allowed: {', '.join(NORMALIZATIONS)}")
    for key in ("image_size", "num_shards"):
        if isinstance(inp[key], bool) or not isinstance(inp[key], int) or inp[key] <= 0:
            raise ValueError(f"config.input.{key} must be a positive int, got {inp[key]!r}")
    if inp.num_shards % process_count:
        raise ValueError(
            f"config.input.num_shards={inp.num_shards} is not a multiple of the {process_count} processes"
        )
    policy = inp.get("on_bad_example", "error")
    if policy not in BAD_EXAMPLE_POLICIES:
        raise ValueError(
            f"config.input.on_bad_example={policy!r}; allowed: {', '.join(BAD_EXAMPLE_POLICIES)}"
        )
    views.check_config(config.eval)


def split_from_config(config, split: str) -> Split:
    """Opens `split` of the config's dataset (config.dataset.name, .data_dir, .folder)."""
    folder = config.dataset.folder or None
    return open_split(
        config.dataset.name,
        split,
        config.dataset.data_dir or None,
        folder=folder,
        on_bad_example=config.input.get("on_bad_example", "error"),
        train_split=config.dataset.train_split,
    )


def preprocess(image, *, dataset_name: str, image_size: int, normalize: str):
    """uint8 HxWxC pixels -> the float32 image_size x image_size x C evaluation input, normalised."""
    shape = tuple(image.shape)
    src = image_ops.Source(dataset_name, shape[-1], encoded=False, image_shape=shape)
    view = image_ops.standard_view(image, src, image_size, crop_ratio=0.875)  # the ratio is unused here
    return image_ops.normalize(view, dataset_name, normalize)


def _streamed(split: Split, config) -> bool:
    return split.files is None and split.num_examples > config.input.cache_max_examples


def _records(split: Split, subsplit: str | None = None):
    """(raw image, int32 label) in stored order: pixels, encoded bytes, or an image folder's paths."""
    import tensorflow as tf

    if split.files is not None:
        return tf.data.Dataset.from_tensor_slices((list(split.files), np.asarray(split.labels, np.int32)))
    import tensorflow_datasets as tfds

    decoders = {"image": tfds.decode.SkipDecoding()} if split.encoded else None
    ds = split.builder.as_dataset(split=subsplit or split.split, shuffle_files=False, decoders=decoders)
    return ds.map(lambda ex: (ex["image"], tf.cast(ex["label"], tf.int32)))


def _loader(split: Split):
    """raw record -> what the image ops take (an image folder's records are paths: read the file)."""
    import tensorflow as tf

    return tf.io.read_file if split.files is not None else (lambda raw: raw)


def _epoch_seeds(seed: int, epoch: int) -> tuple[int, np.ndarray]:
    """The epoch's shuffle seed and the [2] augmentation key that example j folds in."""
    words = np.random.SeedSequence([seed, epoch]).generate_state(3)
    return int(words[0]), words[1:].astype(np.int64)


def _train_preprocessor(split: Split, config):
    prep = augment.train_preprocessor(
        image_ops.source_of(split),
        config.input.image_size,
        config.input.normalize,
        config.input.train_augment,
        config.input.extra_augment,
        config.eval.crop_ratio,
    )
    load = _loader(split)
    return lambda raw, seed: prep(load(raw), seed)


def train_batches(
    split: Split, config, *, start_step: int = 0, process_index: int = 0, process_count: int = 1
) -> Iterator[dict[str, np.ndarray]]:
    """Yields this process's share of every global training batch, from `start_step` on, forever.

    Args:
      split: the training split.
      config: the experiment config (batch_size, seed, dataset, input; see configs/base.py).
      start_step: the first step to yield (a restored run's step).
      process_index, process_count: this process and the number of processes.

    Yields:
      {"image": float32 (B/P, H, W, C), "label": int32 (B/P,)}.
    """
    import tensorflow as tf

    global_batch = config.batch_size
    local_batch = global_batch // process_count
    steps_per_epoch = durations.steps_per_epoch(split.num_examples, global_batch)
    prep = _train_preprocessor(split, config)
    epoch, skip = divmod(start_step, steps_per_epoch)
    if _streamed(split, config):
        make_epoch = _streamed_epoch
    else:
        records = _records(split).cache()  # small: decoded (or file names) in memory
        make_epoch = lambda *args: _in_memory_epoch(records, *args)  # noqa: E731
    while True:
        shuffle_seed, aug_key = _epoch_seeds(config.seed, epoch)
        aug_key = tf.constant(aug_key)
        ds = make_epoch(split, config, shuffle_seed, epoch, skip, process_index, process_count)

        def prepare(j, raw, label, aug_key=aug_key):
            return prep(raw, tf.random.experimental.stateless_fold_in(aug_key, j)), label

        ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
        ds = ds.batch(local_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
        for image, label in _checked(_with_threads(ds, config), split):
            yield {"image": image, "label": label}
        epoch, skip = epoch + 1, 0


def _in_memory_epoch(records, split, config, shuffle_seed, epoch, skip, process_index, process_count):
    """(j, raw, label) of this process's elements of the epoch, j the index in the global order."""
    global_batch = config.batch_size
    local_batch = global_batch // process_count
    steps_per_epoch = durations.steps_per_epoch(split.num_examples, global_batch)
    # File names are cheap to hold: shuffle an image folder's whole listing.
    buffer = split.num_examples if split.files is not None else config.input.shuffle_buffer
    ds = records.shuffle(min(buffer, split.num_examples), seed=shuffle_seed, reshuffle_each_iteration=False)
    ds = ds.take(steps_per_epoch * global_batch)  # drop the last partial global batch
    ds = ds.enumerate().map(lambda i, xy: (i, xy[0], xy[1]))
    first = skip * global_batch  # a restored run: skip, without decoding, what was seen
    ds = ds.filter(lambda i, _x, _y: i >= first)
    # Element i goes to global batch i // (local_batch * P), slice (i // local_batch) % P.
    return ds.filter(lambda i, _x, _y: (i // local_batch) % process_count == process_index)


def _absolute_range(split: Split) -> tuple[str, int, int]:
    import tensorflow_datasets as tfds

    instructions = tfds.core.ReadInstruction.from_spec(split.split).to_absolute(split.builder.info.splits)
    if len(instructions) != 1:
        raise ValueError(f"split {split.split!r} joins several splits; streaming reads one split or slice")
    (inst,) = instructions
    # TFDS writes a slice's start 0 and end N (the split's size) as None.
    stop = split.builder.info.splits[inst.splitname].num_examples if inst.to is None else inst.to
    return inst.splitname, inst.from_ or 0, stop


def shard_ranges(start: int, stop: int, count: int) -> list[tuple[int, int]]:
    """`count` contiguous ranges covering [start, stop); the first (stop - start) % count get one more."""
    size, extra = divmod(stop - start, count)
    bounds = [start + v * size + min(v, extra) for v in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _streamed_epoch(split, config, shuffle_seed, epoch, skip, process_index, process_count):
    """(j, raw, label) of this process's elements of the epoch, reading only its own ranges."""
    import tensorflow as tf

    num_shards = config.input.num_shards
    if num_shards % process_count:
        raise ValueError(
            f"config.input.num_shards={num_shards} must be a multiple of the {process_count} processes"
        )
    name, start, stop = _absolute_range(split)
    if stop - start < num_shards:
        raise ValueError(
            f"config.input.num_shards={num_shards} exceeds the {stop - start} examples of {split.split!r}"
        )
    ranges = shard_ranges(start, stop, num_shards)
    mine = num_shards // process_count  # ranges read by this process
    per_epoch = durations.steps_per_epoch(split.num_examples, config.batch_size) * config.batch_size
    first, last = skip * config.batch_size // process_count, per_epoch // process_count
    buffer = max(1, config.input.shuffle_buffer // num_shards)
    streams = []
    for i in range(mine):
        v = i * process_count + process_index
        lo, hi = ranges[v]
        offset_word, seed_word = np.random.SeedSequence([shuffle_seed, v]).generate_state(2)
        cut = lo + int(offset_word) % (hi - lo)
        parts = [_records(split, f"{name}[{a}:{b}]") for a, b in ((cut, hi), (lo, cut)) if b > a]
        stream = parts[0] if len(parts) == 1 else parts[0].concatenate(parts[1])
        stream = stream.shuffle(buffer, seed=int(seed_word), reshuffle_each_iteration=False)
        streams.append(stream.skip(max(0, (first - i + mine - 1) // mine)))  # local k = i (mod mine)
    local = tf.data.Dataset.range(first, last)
    ds = tf.data.Dataset.choose_from_datasets(streams, local.map(lambda k: k % mine))
    ds = tf.data.Dataset.zip(local, ds)
    return ds.map(lambda k, xy: (k * process_count + process_index, xy[0], xy[1]))


def eval_batches(
    split: Split, config, *, protocol: str | None = None, process_index: int = 0, process_count: int = 1
) -> Iterator[dict]:
    """Yields the whole split once in this process's share of padded global eval batches.

    Every process yields the same number of batches of B / P examples; padding has `mask` 0, so each
    example is counted exactly once and none is dropped.

    Args:
      split: the evaluation split.
      config: the experiment config (eval_batch_size, input.image_size, input.normalize, eval.*).
      protocol: one of views.PROTOCOLS; None gives the trainer's single-view batches.

    Yields:
      With a protocol: {"views": tuple of float32 (B/P, V_k, H_k, W_k, C), one entry per group of
      same-sized views (views.py), "label": int32 (B/P,), "mask": float32 (B/P,)}.
      With protocol None: {"image": float32 (B/P, S, S, C), "label", "mask"}, the centre view.
    """
    import tensorflow as tf

    global_batch = config.eval_batch_size
    local_batch = global_batch // process_count
    src = image_ops.source_of(split)
    size, scales = config.input.image_size, tuple(config.eval.scales)
    make_views = views.view_fn(
        protocol or "center", src, size, config.eval.crop_ratio, scales, config.input.normalize
    )
    shapes = views.view_shapes(protocol or "center", size, split.channels, scales)
    load = _loader(split)
    if _streamed(split, config):
        # Process p reads its own contiguous range; the ranges differ in size by at most one.
        name, start, stop = _absolute_range(split)
        lo, hi = shard_ranges(start, stop, process_count)[process_index]
        ds = _records(split, f"{name}[{lo}:{hi}]")
        num_batches = math.ceil(math.ceil((stop - start) / process_count) / local_batch)
    else:
        ds = _records(split).enumerate()
        ds = ds.filter(lambda i, _xy: (i // local_batch) % process_count == process_index)
        ds = ds.map(lambda _i, xy: xy)
        num_batches = math.ceil(split.num_examples / global_batch)
    ds = ds.map(lambda raw, label: (make_views(load(raw)), label), num_parallel_calls=tf.data.AUTOTUNE)
    batches = _checked(_with_threads(ds.batch(local_batch).prefetch(tf.data.AUTOTUNE), config), split)
    for _ in range(num_batches):
        group, label = next(batches, (None, None))
        batch = _pad(group, label, local_batch, shapes)
        if protocol is None:
            batch = {"image": batch.pop("views")[0][:, 0], **batch}
        yield batch


def _pad(group, label, batch: int, shapes) -> dict:
    if group is None:  # this process has no examples left in the final global batch
        group = tuple(np.zeros((0, *shape), np.float32) for shape in shapes)
        label = np.zeros((0,), np.int32)
    n = label.shape[0]
    mask = np.zeros((batch,), np.float32)
    mask[:n] = 1.0
    padded = tuple(np.pad(v, [(0, batch - n)] + [(0, 0)] * (v.ndim - 1)) for v in group)
    return {"views": padded, "label": np.pad(label, (0, batch - n)), "mask": mask}


def _with_threads(ds, config):
    import tensorflow as tf

    threads = config.input.threads
    if not threads:
        return ds
    options = tf.data.Options()
    options.threading.private_threadpool_size = threads
    return ds.with_options(options)


def _checked(ds, split: Split):
    """Iterates `ds` as NumPy; a record that cannot be read or decoded stops with its file named."""
    import tensorflow as tf

    iterator = ds.as_numpy_iterator()
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except tf.errors.OpError as e:
            raise _unreadable(split, e) from e
        yield item


def _unreadable(split: Split, error) -> Exception:
    import tensorflow as tf

    reason = error.message.strip().splitlines()[0]
    if split.files is None:
        where = getattr(split.builder, "data_dir", "?")
        return ValueError(
            f"cannot read or decode a record of {split.name!r} split {split.split!r} in {where}: {reason}; "
            "delete that folder and prepare the dataset again"
        )
    for path in split.files:  # find the culprit: only after a failure, so the scan costs nothing else
        try:
            tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        except tf.errors.OpError as e:
            # TensorFlow wraps the reason in the op's name ({{function_node ...}} ... [Op:DecodeImage]).
            first = e.message.strip().splitlines()[0]
            reason = re.sub(r"\{\{function_node [^}]*\}\}|\[Op:.*$", "", first).strip().rstrip(".")
            return ValueError(
                f"unreadable image file {path} (split {split.split!r}): {reason}; delete or replace "
                "it, or set config.input.on_bad_example=skip"
            )
    return ValueError(f"cannot read image folder split {split.split!r}: {reason}")
