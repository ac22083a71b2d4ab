"""The datasets jaxcnn reads, their facts (pixel statistics, storage), and opening a split.

Every dataset is a TFDS dataset except "image_folder", which is any folder laid out as
root/split/label/*.jpg (read through tfds.folder_dataset.ImageFolder). Opening a split checks, at
the boundary, what would otherwise fail deep inside tf.data or XLA: a missing or unprepared dataset
(the error names the command that prepares it), an unknown or empty split, and images that are not
uint8 H x W x C with 1 or 3 channels.
"""

from __future__ import annotations

import dataclasses
import os
import warnings

# Per-channel pixel statistics on [0, 1] images, for config.input.normalize = "standardize".
IMAGENET_MEAN_STD = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
MEAN_STD = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet2012": IMAGENET_MEAN_STD,
    "imagenette": IMAGENET_MEAN_STD,  # a subset of ImageNet
    "image_folder": IMAGENET_MEAN_STD,  # photographs: the usual transfer-learning default
}
SUPPORTED = tuple(MEAN_STD)
# Datasets whose TFDS records hold JPEG bytes: read them undecoded and decode (fused with the crop)
# in the pipeline, so the crop decides which part of the image is decoded.
JPEG_DATASETS = ("imagenet2012", "imagenette")
# Datasets that TFDS cannot download: the user places the archives in the TFDS manual dir.
MANUAL_DATASETS = ("imagenet2012",)


@dataclasses.dataclass(frozen=True)
class Split:
    """An opened split and its facts.

    Attributes:
      builder: the tfds DatasetBuilder (a tfds.folder_dataset.ImageFolder for image folders).
      split: the TFDS split string, e.g. "train" or "train[:90%]".
      num_examples, num_classes: sizes.
      name: the jaxcnn dataset name (a key of MEAN_STD).
      channels: channels of the decoded images (image folders decode to RGB).
      image_shape: (H, W, C) when every image has that shape (MNIST, CIFAR), else None.
      encoded: records hold encoded image bytes (decoded in the pipeline), not pixels.
      files, labels: an image folder's file paths and integer labels, in TFDS's order.
    """

    builder: object
    split: str
    num_examples: int
    num_classes: int
    name: str = "mnist"
    channels: int = 1
    image_shape: tuple | None = None
    encoded: bool = False
    files: tuple[str, ...] | None = None
    labels: tuple[int, ...] | None = None


def check_name(name: str) -> None:
    """Raises ValueError unless `name` (optionally "name/tfds_config") is a supported dataset."""
    if name.split("/")[0] not in SUPPORTED:
        raise ValueError(f"unknown dataset {name!r}; supported: {', '.join(SUPPORTED)}")


BAD_EXAMPLE_POLICIES = ("error", "skip")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
HELD_OUT_NAMES = ("validation", "val", "test")


def open_split(
    dataset_name: str,
    split: str,
    data_dir: str | None = None,
    folder: str | None = None,
    *,
    on_bad_example: str = "error",
    train_split: str | None = None,
) -> Split:
    """Opens a prepared split; raises a one-line error when it is missing, unknown, empty or malformed.

    Args:
      dataset_name: a key of MEAN_STD; TFDS datasets may name a builder config, e.g.
        "imagenette/320px-v2".
      split: a TFDS split string (TFDS slices such as "train[:10%]" work for TFDS datasets).
      data_dir: the TFDS data dir (None: $TFDS_DATA_DIR or ~/tensorflow_datasets).
      folder: the root of an image folder (dataset "image_folder" only).
      on_bad_example: an image folder's policy for bad data (config.input.on_bad_example). "error":
        an empty class directory, or a class of this split that `train_split` lacks, is a one-line
        error here, and an unreadable image one when it is read (naming the file). "skip": every
        image is decoded once here; unreadable ones, and images of classes `train_split` lacks, are
        left out of the split (the same ones every time the split is opened), with one warning
        giving their count and names.
      train_split: the split the model is trained on, for the class check of another split.
    """
    check_name(dataset_name)
    if on_bad_example not in BAD_EXAMPLE_POLICIES:
        raise ValueError(
            f"config.input.on_bad_example={on_bad_example!r}; allowed: {', '.join(BAD_EXAMPLE_POLICIES)}"
        )
    base = dataset_name.split("/")[0]
    if base == "image_folder":
        return _open_image_folder(folder, split, on_bad_example, train_split)
    import tensorflow_datasets as tfds

    builder = tfds.builder(dataset_name, data_dir=data_dir)
    if not builder.is_prepared():
        _prepare_or_explain(builder, base, data_dir)
    splits = builder.info.splits
    try:
        num_examples = splits[split].num_examples  # also takes TFDS slices such as "train[:10%]"
    except (KeyError, ValueError) as e:
        raise ValueError(f"dataset {dataset_name!r} has no split {split!r}; has {list(splits)}") from e
    if num_examples == 0:
        raise ValueError(f"split {split!r} of {dataset_name!r} is empty")
    image = builder.info.features["image"]
    shape, dtype = tuple(image.shape), image.np_dtype
    check_image_spec(shape, dtype, f"dataset {dataset_name!r}")
    check_files(builder, split, base)
    return Split(
        builder=builder,
        split=split,
        num_examples=num_examples,
        num_classes=builder.info.features["label"].num_classes,
        name=base,
        channels=shape[-1],
        image_shape=shape if None not in shape else None,
        encoded=base in JPEG_DATASETS,
    )


TFRECORD_FRAMING = 16  # bytes around each record: length (8), its CRC (4), the data's CRC (4)


def check_files(builder, split: str, name: str) -> None:
    """Raises FileNotFoundError / ValueError when a TFDS split's record files are missing or shorter
    than TFDS recorded when it wrote them (a copy or a download that stopped): found when the split is
    opened, not when its last record is read at the end of an epoch or of an evaluation."""
    import tensorflow_datasets as tfds

    if builder.info.file_format != tfds.core.FileFormat.TFRECORD:
        return
    for part in split.split("+"):
        info = builder.info.splits[part.split("[")[0].strip()]
        paths = [os.fspath(p) for p in info.filepaths]
        missing = [p for p in paths if not os.path.exists(p)]
        if missing:
            raise FileNotFoundError(
                f"{name} split {info.name!r} is missing {len(missing)} of its {len(paths)} files "
                f"(e.g. {missing[0]}); prepare the dataset again: python -m jaxcnn.data.prepare {name}"
            )
        size = sum(os.path.getsize(p) for p in paths)
        expected = int(info.num_bytes) + TFRECORD_FRAMING * info.num_examples
        if info.num_bytes and size < expected:
            raise ValueError(
                f"{name} split {info.name!r} is truncated: its {len(paths)} file(s) ({paths[0]}, ...) "
                f"hold {size} bytes, TFDS wrote {expected}; "
                f"delete them and prepare the dataset again: python -m jaxcnn.data.prepare {name}"
            )


def check_image_spec(shape: tuple, dtype, what: str) -> None:
    """Raises ValueError unless a dataset's image feature is uint8 (H, W, C) with 1 or 3 channels."""
    import tensorflow as tf

    if len(shape) != 3 or shape[-1] not in (1, 3) or tf.as_dtype(dtype) != tf.uint8:
        raise ValueError(
            f"{what} has images of shape {shape} and dtype {tf.as_dtype(dtype).name}; "
            "expected uint8 (height, width, channels) with 1 or 3 channels"
        )


def _prepare_or_explain(builder, name: str, data_dir: str | None) -> None:
    """Downloads an unprepared dataset when TFDS can; otherwise raises with the command that prepares it."""
    from jaxcnn.data import prepare

    where = f" --data_dir {data_dir}" if data_dir else ""
    if name in MANUAL_DATASETS:
        manual_dir = os.path.join(builder.data_dir_root, "downloads", "manual")
        raise FileNotFoundError(
            f"{name} is not prepared in {builder.data_dir_root}; put ILSVRC2012_img_train.tar and "
            f"ILSVRC2012_img_val.tar (from https://image-net.org) in {manual_dir} and run: "
            f"python -m jaxcnn.data.prepare {name} --manual_dir {manual_dir}{where}"
        )
    if not prepare.is_online():
        source = prepare.OFFLINE_SOURCES.get(name, "")
        raise FileNotFoundError(
            f"dataset {name!r} is not prepared in {builder.data_dir_root} and there is no internet; "
            f"run: python -m jaxcnn.data.prepare {name}{source}{where}"
        )
    builder.download_and_prepare()


def _open_image_folder(folder: str | None, split: str, policy: str = "error", train_split=None) -> Split:
    import tensorflow_datasets as tfds

    if not folder:
        raise ValueError(
            "dataset 'image_folder' needs config.dataset.folder: the root of root/split/label/*.jpg"
        )
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"image folder {folder!r} does not exist (expected root/split/label/*.jpg)")
    builder = tfds.folder_dataset.ImageFolder(folder)
    splits = builder.info.splits
    if split not in splits:
        # Held-out images are called test, val or validation: a recipe that evaluates "validation"
        # (ImageNet's) reads a folder's only held-out split under either of the other names.
        held_out = [s for s in HELD_OUT_NAMES if s in splits] if split in HELD_OUT_NAMES else []
        if len(held_out) != 1:
            raise ValueError(f"image folder {folder!r} has no split {split!r}; has {sorted(splits)}")
        warnings.warn(
            f"image folder {folder!r} has no split {split!r}: reading {held_out[0]!r}", stacklevel=3
        )
        split = held_out[0]
    # ImageFolder lists (path, label) in a fixed shuffled order; jaxcnn reads the files itself so
    # that shuffling, skipping and sharding move file names, not images.
    examples = builder._split_examples[split]  # noqa: SLF001 - the listing ImageFolder computed
    if not examples:
        raise ValueError(f"split {split!r} of image folder {folder!r} is empty (no .jpg/.jpeg/.png files)")
    _check_class_directories(folder, policy)
    if train_split and train_split != split and train_split in splits:
        examples = _known_classes(
            folder, split, examples, builder._split_examples[train_split], train_split, policy
        )  # noqa: SLF001
    if policy == "skip":
        examples = _readable(folder, split, examples)
    label_feature = builder.info.features["label"]
    return Split(
        builder=builder,
        split=split,
        num_examples=len(examples),
        num_classes=label_feature.num_classes,
        name="image_folder",
        channels=3,
        image_shape=None,
        encoded=True,
        files=tuple(os.fspath(e.image_path) for e in examples),
        labels=tuple(label_feature.str2int(e.label) for e in examples),
    )


def _check_class_directories(folder: str, policy: str) -> None:
    """An empty class directory would become a class without examples (an output never trained)."""
    empty = []
    for split_dir in sorted(os.scandir(folder), key=lambda e: e.name):
        if not split_dir.is_dir():
            continue
        for class_dir in sorted(os.scandir(split_dir.path), key=lambda e: e.name):
            if class_dir.is_dir() and not any(
                f.name.lower().endswith(IMAGE_SUFFIXES) for f in os.scandir(class_dir.path)
            ):
                empty.append(class_dir.path)
    if not empty:
        return
    listed = ", ".join(empty[:3]) + (f" and {len(empty) - 3} more" if len(empty) > 3 else "")
    if policy == "error":
        raise ValueError(
            f"image folder {folder!r}: class directory {listed} has no images (.jpg/.jpeg/.png); remove "
            "it (an empty directory is a class the model can never learn) or set "
            "config.input.on_bad_example=skip"
        )
    warnings.warn(
        f"image folder {folder!r}: empty class directories {listed} (classes with no examples)", stacklevel=2
    )


def _known_classes(folder: str, split: str, examples, train_examples, train_split: str, policy: str):
    """`split`'s examples of the classes `train_split` has: another class is never predicted right."""
    known = {e.label for e in train_examples}
    unknown = sorted({e.label for e in examples} - known)
    if not unknown:
        return examples
    dropped = [e for e in examples if e.label not in known]
    what = f"{len(unknown)} class(es) that split {train_split!r} lacks: {', '.join(unknown[:5])}"
    if policy == "error":
        raise ValueError(
            f"image folder {folder!r}: split {split!r} has {what} ({len(dropped)} images, counted as errors "
            "by any model trained on it); remove them or set config.input.on_bad_example=skip"
        )
    warnings.warn(
        f"image folder {folder!r}: left out the {len(dropped)} images of split {split!r} in {what}",
        stacklevel=2,
    )
    return [e for e in examples if e.label in known]


def _readable(folder: str, split: str, examples):
    """The examples whose image decodes (every image is decoded once, in parallel, in a fixed order)."""
    import tensorflow as tf

    paths = [os.fspath(e.image_path) for e in examples]

    def decode(i, path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        return i, tf.shape(image)[0]

    ds = tf.data.Dataset.from_tensor_slices(paths).enumerate()
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).ignore_errors()
    good = {int(i) for i, _ in ds.as_numpy_iterator()}
    bad = [p for i, p in enumerate(paths) if i not in good]
    if not bad:
        return examples
    if len(bad) == len(paths):
        raise ValueError(
            f"split {split!r} of image folder {folder!r}: none of its {len(paths)} images decodes"
        )
    shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
    warnings.warn(
        f"image folder {folder!r}: skipped {len(bad)} unreadable image(s) of split {split!r} "
        f"(config.input.on_bad_example=skip): {shown}",
        stacklevel=2,
    )
    return [e for i, e in enumerate(examples) if i in good]
