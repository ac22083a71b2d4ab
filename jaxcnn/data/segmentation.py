"""Segmentation input pipeline: in-memory NumPy, deterministic, resumable, sharded over processes.

Datasets (config.dataset.name):
  "segmentation_folder": any folder ROOT (config.dataset.folder) laid out as
      ROOT/classes.txt                      class names, one a line (line k names class id k)
      ROOT/SPLIT/images/NAME.png            images (.png, .jpg, .jpeg, .tif, .tiff, .bmp; grey or RGB)
      ROOT/SPLIT/masks/NAME.png             uint8/uint16 class ids, one channel, the image's size
      ROOT/SPLIT/instances/NAME.png         optional: instance ids (0 none, 1..k), for the weight map
    config.dataset.num_classes (when set, > 0) overrides classes.txt.
  "mnist_canvas": the same layout, written by `python -m jaxcnn.data.prepare mnist_canvas`
    (mnist_canvas.py), read from mnist_canvas.default_root(config.dataset.data_dir) unless
    config.dataset.folder names another ROOT.
  "oxford_iiit_pet": TFDS's trimaps, mapped to class ids 0 background (trimap 2), 1 pet (trimap 1),
    2 border (trimap 3); no instances.
Opening a split checks every file: a missing mask, an image and mask of different sizes, a class id
>= num_classes or an unreadable file is a one-line error naming the file.

Training (train_batches) follows jaxcnn/data/input.py's in-memory semantics: epoch e is a seeded
permutation of the split (seed = config.seed), of which the last partial global batch is dropped;
element j of the epoch belongs to global batch j // B and process p of P takes the p-th contiguous
slice of B / P; element j is augmented (seg_augment.py) with a generator seeded by (seed, e, j). So
a run restored at step s regenerates exactly the batches it would have seen. Each example becomes a
config.input.image_size tile: a random tile of a larger image, a mirror-padded smaller one (padding
and any other mirrored pixels get weight 0), with the paper's weight map (weight_map.py) computed
from the augmented instance mask.

Normalisation (config.input.normalize): "standardize" ((x/255 - mean) / std with MEAN_STD of the
dataset: MNIST's for mnist_canvas, ImageNet's otherwise, its channel average for grey images) or
"unit" (x/255).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from jaxcnn import durations
from jaxcnn.data import datasets, mnist_canvas, seg_augment, weight_map

DATASETS = ("mnist_canvas", "segmentation_folder", "oxford_iiit_pet")
NORMALIZATIONS = ("standardize", "unit")
_IMAGENET = datasets.IMAGENET_MEAN_STD
MEAN_STD = {
    "mnist_canvas": datasets.MEAN_STD["mnist"],
    "segmentation_folder": _IMAGENET,
    "oxford_iiit_pet": _IMAGENET,
}
PET_CLASSES = ("background", "pet", "border")
# TFDS oxford_iiit_pet's trimap values 1 pet, 2 background, 3 border -> class ids (index: trimap).
PET_TRIMAP_TO_CLASS = np.array([-1, 1, 0, 2], np.int32)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
MASK_SUFFIXES = (".png", ".tif", ".tiff", ".bmp")  # lossless only: class ids must survive


@dataclasses.dataclass(frozen=True, eq=False)
class SegSplit:
    """An opened segmentation split, held in memory.

    Attributes:
      name: the dataset (one of DATASETS); split: the split's name.
      num_examples, num_classes, channels: sizes (every image has `channels` channels).
      class_names: num_classes names, index = class id.
      images: uint8 HxWxC arrays; masks: int32 HxW class ids; instances: int32 HxW instance ids
        (0 none) or None when the dataset has none. Stored order (file names sorted).
      files: the image paths (folder datasets), else None.
    """

    name: str
    split: str
    num_examples: int
    num_classes: int
    channels: int
    class_names: tuple[str, ...]
    images: list
    masks: list
    instances: list | None = None
    files: tuple[str, ...] | None = None


def check_config(config, process_count: int = 1) -> None:
    """Checks the keys this pipeline reads (dataset, input, loss), before anything is opened."""
    name = config.dataset.name
    if name not in DATASETS:
        raise ValueError(f"config.dataset.name={name!r} is not a segmentation dataset; allowed: {DATASETS}")
    if name == "segmentation_folder" and not config.dataset.get("folder", ""):
        raise ValueError(
            "dataset 'segmentation_folder' needs config.dataset.folder: the ROOT of ROOT/split/images"
        )
    size = config.input.image_size
    if isinstance(size, bool) or not isinstance(size, int) or size <= 0:
        raise ValueError(f"config.input.image_size must be a positive int, got {size!r}")
    if config.input.normalize not in NORMALIZATIONS:
        raise ValueError(f"config.input.normalize={config.input.normalize!r}; allowed: {NORMALIZATIONS}")
    batch = config.batch_size
    if isinstance(batch, bool) or not isinstance(batch, int) or batch <= 0 or batch % process_count:
        raise ValueError(
            f"config.batch_size={batch!r} must be a positive multiple of the {process_count} processes"
        )
    seg_augment.params_from_config(config.input)
    weight_map.params_from_config(config.get("loss"))


# ---- opening a split ------------------------------------------------------------------------------


def open_split(config, split_name: str) -> SegSplit:
    """Opens and checks `split_name` of config.dataset (see the module docstring for the datasets).

    Raises:
      FileNotFoundError: the dataset, the split or a mask is missing (the message says how to make it).
      ValueError: bad data (sizes differ, class id out of range, unreadable file), naming the file.
    """
    name = config.dataset.name
    folder = config.dataset.get("folder", "") or ""
    num_classes = config.dataset.get("num_classes", 0) or 0
    if name == "mnist_canvas":
        root = Path(folder) if folder else mnist_canvas.default_root(config.dataset.get("data_dir") or None)
        if not mnist_canvas.is_prepared(root):
            raise FileNotFoundError(
                f"mnist_canvas is not prepared in {root}; run: python -m jaxcnn.data.prepare mnist_canvas"
                + (f" --out {root}" if folder else "")
            )
        return open_folder(root, split_name, num_classes, name=name)
    if name == "segmentation_folder":
        if not folder:
            raise ValueError(
                "dataset 'segmentation_folder' needs config.dataset.folder: the ROOT of ROOT/split/images"
            )
        return open_folder(Path(folder), split_name, num_classes)
    if name == "oxford_iiit_pet":
        return _open_pets(config.dataset.get("data_dir") or None, split_name)
    raise ValueError(f"config.dataset.name={name!r} is not a segmentation dataset; allowed: {DATASETS}")


def read_class_names(root: Path, num_classes: int = 0) -> tuple[str, ...]:
    """ROOT/classes.txt's names; `num_classes` > 0 overrides (and must agree with the file if any)."""
    path = root / "classes.txt"
    if path.is_file():
        names = tuple(line.strip() for line in path.read_text().splitlines() if line.strip())
        if num_classes and num_classes != len(names):
            raise ValueError(
                f"config.dataset.num_classes={num_classes} but {path} lists {len(names)} classes"
            )
        if not names:
            raise ValueError(f"{path} lists no classes (one name a line, line k names class id k)")
        return names
    if not num_classes:
        raise FileNotFoundError(
            f"{path} is missing: write the class names, one a line, or set config.dataset.num_classes"
        )
    return tuple(str(k) for k in range(num_classes))


def _listing(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in suffixes and p.is_file()}


def _read(path: Path, what: str) -> np.ndarray:
    """A file's pixels; a file PIL cannot decode is a one-line ValueError naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if what == "image":
                if im.mode not in ("L", "RGB"):
                    im = im.convert("L" if im.mode in ("1", "I;16", "I", "F", "LA") else "RGB")
            elif im.mode == "1":
                im = im.convert("L")
            elif im.mode not in ("L", "P", "I;16", "I"):
                raise ValueError(f"{what} {path} has mode {im.mode}: expected one channel of integer ids")
            return np.asarray(im)
    except (OSError, UnidentifiedImageError, SyntaxError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"unreadable {what} file {path}: {reason}") from e


def _load_example(image_path: Path, mask_path: Path, inst_path: Path | None, num_classes: int):
    image = _read(image_path, "image")
    image = image[..., None] if image.ndim == 2 else image
    mask = _read(mask_path, "mask").astype(np.int32)
    if mask.shape != image.shape[:2]:
        raise ValueError(
            f"mask {mask_path} is {mask.shape[1]}x{mask.shape[0]} but its image {image_path} is "
            f"{image.shape[1]}x{image.shape[0]} (width x height)"
        )
    top = int(mask.max())
    if top >= num_classes:
        raise ValueError(
            f"mask {mask_path} holds class id {top}, out of range: allowed 0..{num_classes - 1} "
            f"({num_classes} classes)"
        )
    inst = None
    if inst_path is not None:
        inst = _read(inst_path, "instance mask").astype(np.int32)
        if inst.shape != mask.shape:
            raise ValueError(
                f"instance mask {inst_path} is {inst.shape[1]}x{inst.shape[0]} but its image {image_path} "
                f"is {image.shape[1]}x{image.shape[0]} (width x height)"
            )
    return image, mask, inst


def open_folder(
    root: Path, split: str, num_classes: int = 0, *, name: str = "segmentation_folder"
) -> SegSplit:
    """Reads and checks ROOT/split/{images,masks[,instances]} (layout in the module docstring)."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"segmentation folder {root} does not exist (expected ROOT/split/images, ROOT/split/masks)"
        )
    class_names = read_class_names(root, num_classes)
    split_dir = root / split
    images = _listing(split_dir / "images", IMAGE_SUFFIXES)
    if not images:
        have = sorted(p.name for p in root.iterdir() if (p / "images").is_dir())
        raise FileNotFoundError(
            f"{split_dir / 'images'} has no images (.png, .jpg, ...); splits with images: {have}"
        )
    masks = _listing(split_dir / "masks", MASK_SUFFIXES)
    has_instances = (split_dir / "instances").is_dir()
    instances = _listing(split_dir / "instances", MASK_SUFFIXES)
    jobs = []
    for stem, image_path in images.items():
        if stem not in masks:
            raise FileNotFoundError(
                f"no mask for image {image_path}: expected {split_dir / 'masks' / stem}.png"
            )
        if has_instances and stem not in instances:
            raise FileNotFoundError(
                f"no instance mask for image {image_path}: expected {split_dir / 'instances' / stem}.png"
            )
        jobs.append((image_path, masks[stem], instances.get(stem) if has_instances else None))
    # PNG decoding releases the GIL; map keeps the order, and raises the first bad file in it.
    workers = min(8, os.cpu_count() or 1)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        loaded = list(pool.map(lambda job: _load_example(*job, len(class_names)), jobs))
    channels = 3 if any(im.shape[-1] == 3 for im, _, _ in loaded) else 1
    return SegSplit(
        name=name,
        split=split,
        num_examples=len(loaded),
        num_classes=len(class_names),
        channels=channels,
        class_names=class_names,
        images=[np.repeat(im, channels, axis=-1) if im.shape[-1] != channels else im for im, _, _ in loaded],
        masks=[m for _, m, _ in loaded],
        instances=[i for _, _, i in loaded] if has_instances else None,
        files=tuple(os.fspath(j[0]) for j in jobs),
    )


def trimap_to_classes(trimap: np.ndarray) -> np.ndarray:
    """oxford_iiit_pet trimap (values 1 pet, 2 background, 3 border) -> int32 class ids (PET_CLASSES)."""
    trimap = np.asarray(trimap)
    trimap = trimap[..., 0] if trimap.ndim == 3 else trimap
    bad = (trimap < 1) | (trimap > 3)
    if bad.any():
        raise ValueError(
            f"trimap holds value {int(trimap[bad][0])}; allowed 1 (pet), 2 (background), 3 (border)"
        )
    return PET_TRIMAP_TO_CLASS[trimap]


def pet_split(records, split: str) -> SegSplit:
    """A SegSplit from oxford_iiit_pet records ({"image": HxWx3 uint8, "segmentation_mask": HxWx1})."""
    images, masks = [], []
    for record in records:
        images.append(np.asarray(record["image"]))
        masks.append(trimap_to_classes(record["segmentation_mask"]))
    if not images:
        raise ValueError(f"split {split!r} of oxford_iiit_pet is empty")
    return SegSplit("oxford_iiit_pet", split, len(images), 3, 3, PET_CLASSES, images, masks)


def _open_pets(data_dir: str | None, split: str) -> SegSplit:
    import tensorflow_datasets as tfds

    builder = tfds.builder("oxford_iiit_pet", data_dir=data_dir)
    if not builder.is_prepared():
        where = f" --data_dir {data_dir}" if data_dir else ""
        raise FileNotFoundError(
            f"dataset 'oxford_iiit_pet' is not prepared in {builder.data_dir_root}; run (with internet): "
            f"python -m jaxcnn.data.prepare oxford_iiit_pet{where}, or copy a prepared "
            f"{builder.data_dir_root}/oxford_iiit_pet from another machine"
        )
    if split not in builder.info.splits:
        raise ValueError(f"dataset 'oxford_iiit_pet' has no split {split!r}; has {list(builder.info.splits)}")
    ds = builder.as_dataset(split=split, shuffle_files=False)
    return pet_split(tfds.as_numpy(ds), split)


# ---- training and evaluation examples -------------------------------------------------------------


def normalizer(split: SegSplit, config):
    """uint8/float HxWxC pixels in [0, 255] -> float32 normalised (config.input.normalize)."""
    mode = config.input.normalize
    if mode not in NORMALIZATIONS:
        raise ValueError(f"config.input.normalize={mode!r}; allowed: {NORMALIZATIONS}")
    if mode == "unit":
        return lambda image: np.asarray(image, np.float32) / np.float32(255.0)
    mean, std = (np.asarray(v, np.float32) for v in MEAN_STD[split.name])
    if split.channels != len(mean):  # grey images of an RGB dataset's statistics: their average
        mean, std = (
            np.full(split.channels, mean.mean(), np.float32),
            np.full(split.channels, std.mean(), np.float32),
        )
    return lambda image: (np.asarray(image, np.float32) / np.float32(255.0) - mean) / std


def class_weights(split: SegSplit, config) -> np.ndarray:
    """w_c per class over `split` (the training split), as config.loss.class_balance asks."""
    params = weight_map.params_from_config(config.get("loss"))
    return weight_map.class_weights(split.masks, split.num_classes, params.class_balance)


def _epoch_order(seed: int, epoch: int, num_examples: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


def training_example(split: SegSplit, index: int, size: int, augment, loss, class_w, normalize, rng):
    """One augmented SxS tile of example `index`: (image float32 SxSxC, label int32, weight float32)."""
    image, mask = split.images[index], split.masks[index]
    h, w = mask.shape
    # A random tile of a larger image; a smaller one is centred and mirror-padded.
    offset = tuple(int(rng.integers(0, n - size + 1)) if n >= size else -((size - n) // 2) for n in (h, w))
    coords = seg_augment.source_coordinates((h, w), (size, size), offset, augment, rng)
    valid = seg_augment.inside(coords, (h, w))
    tile = seg_augment.warp_image(image, coords, augment.interpolation)
    label = seg_augment.warp_labels(mask, coords)
    instances = None
    if split.instances is not None and loss.w0 > 0:
        # Mirrored copies of instances are not instances: they would add borders that are not there.
        instances = np.where(valid, seg_augment.warp_labels(split.instances[index], coords), 0)
    weight = weight_map.weight_map(label, instances, class_w, loss) * valid
    return normalize(tile), label, weight.astype(np.float32)


def train_batches(
    split: SegSplit, config, *, start_step: int = 0, process_index: int = 0, process_count: int = 1
) -> Iterator[dict[str, np.ndarray]]:
    """Yields this process's share of every global training batch, from `start_step` on, forever.

    Args:
      split: the training split.
      config: batch_size, seed, input.image_size, input.normalize, the augmentation keys
        (seg_augment.py) and the weight-map keys (weight_map.py).
      start_step: the first step to yield (a restored run's step).
      process_index, process_count: this process and the number of processes.

    Yields:
      {"image": float32 (B/P, S, S, C), "label": int32 (B/P, S, S), "weight": float32 (B/P, S, S)},
      S = config.input.image_size; weight 0 marks pixels mirrored in from outside the image.
    """
    check_config(config, process_count)
    global_batch, size, seed = config.batch_size, config.input.image_size, config.seed
    local = global_batch // process_count
    steps_per_epoch = durations.steps_per_epoch(split.num_examples, global_batch)
    augment = seg_augment.params_from_config(config.input)
    loss = weight_map.params_from_config(config.get("loss"))
    class_w = class_weights(split, config)
    normalize = normalizer(split, config)
    epoch, skip = divmod(start_step, steps_per_epoch)
    while True:
        order = _epoch_order(seed, epoch, split.num_examples)
        for step in range(skip, steps_per_epoch):
            first = step * global_batch + process_index * local
            tiles = [
                training_example(
                    split,
                    int(order[j]),
                    size,
                    augment,
                    loss,
                    class_w,
                    normalize,
                    np.random.default_rng([seed, epoch, j]),
                )
                for j in range(first, first + local)
            ]
            yield {
                "image": np.stack([t[0] for t in tiles]),
                "label": np.stack([t[1] for t in tiles]),
                "weight": np.stack([t[2] for t in tiles]),
            }
        epoch, skip = epoch + 1, 0


def eval_examples(split: SegSplit, config) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yields every example once, in stored order, whole and unaugmented.

    Yields:
      (float32 HxWxC normalised image, int32 HxW class ids); sizes may differ between examples.
    """
    normalize = normalizer(split, config)
    for image, mask in zip(split.images, split.masks, strict=True):
        yield normalize(image), mask
