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


def open_split(
    dataset_name: str, split: str, data_dir: str | None = None, folder: str | None = None
) -> Split:
    """Opens a prepared split; raises a one-line error when it is missing, unknown, empty or malformed.

    Args:
      dataset_name: a key of MEAN_STD; TFDS datasets may name a builder config, e.g.
        "imagenette/320px-v2".
      split: a TFDS split string (TFDS slices such as "train[:10%]" work for TFDS datasets).
      data_dir: the TFDS data dir (None: $TFDS_DATA_DIR or ~/tensorflow_datasets).
      folder: the root of an image folder (dataset "image_folder" only).
    """
    check_name(dataset_name)
    base = dataset_name.split("/")[0]
    if base == "image_folder":
        return _open_image_folder(folder, split)
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


def _open_image_folder(folder: str | None, split: str) -> Split:
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
        raise ValueError(f"image folder {folder!r} has no split {split!r}; has {sorted(splits)}")
    # ImageFolder lists (path, label) in a fixed shuffled order; jaxcnn reads the files itself so
    # that shuffling, skipping and sharding move file names, not images.
    examples = builder._split_examples[split]  # noqa: SLF001 - the listing ImageFolder computed
    if not examples:
        raise ValueError(f"split {split!r} of image folder {folder!r} is empty (no .jpg/.jpeg/.png files)")
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
