"""mnist_canvas: a segmentation dataset built deterministically from real MNIST digits.

Each canvas is SIZE x SIZE grey pixels (default 64) holding 2 to 4 MNIST digits (28 x 28) at seeded
random positions. Digits may overlap: a position is redrawn (up to 20 times, keeping the least
overlapping) while more than MAX_OVERLAP of the new digit's foreground would fall on earlier
foreground. Pixels combine by maximum (ink over ink); a digit's foreground is its pixels > 127, and
a pixel's labels are those of the last digit whose foreground covers it (later digits on top):
    masks:     0 background, 1 + digit class
    instances: 0 none, k for the k-th digit placed
so a pixel is labelled foreground exactly when the canvas there is > 127. Train canvases come from
MNIST's train split, test canvases from its test split; canvas i of a split depends only on
(seed, split, i), so a smaller count is a prefix of a larger one.

    python -m jaxcnn.data.prepare mnist_canvas [--num_train 6000] [--num_test 1000] [--out ROOT]

writes the segmentation folder layout (segmentation.py) under ROOT (default:
$TFDS_DATA_DIR or ~/tensorflow_datasets, /mnist_canvas): ROOT/{train,test}/{images,masks,instances}/
NNNNN.png, ROOT/classes.txt and last ROOT/prepared.json (the settings; a complete dataset with the
same settings is left as it is).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
from pathlib import Path

import numpy as np

CLASS_NAMES = ("background",) + tuple(str(d) for d in range(10))
SPLITS = {"train": 0, "test": 1}  # split -> the seed word that keeps the two splits' draws apart
DEFAULT_COUNTS = {"train": 6000, "test": 1000}  # sized for a 30-minute CPU training run
SIZE = 64
DIGITS = (2, 4)  # digits per canvas, inclusive
THRESHOLD = 127  # a digit pixel > THRESHOLD is foreground
MAX_OVERLAP = 0.3
_TRIES = 20
_MARKER = "prepared.json"


def default_root(data_dir: str | None = None) -> Path:
    """ROOT next to the TFDS datasets: data_dir, else $TFDS_DATA_DIR, else ~/tensorflow_datasets."""
    base = data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets"
    return Path(base).expanduser() / "mnist_canvas"


def compose(digits: np.ndarray, labels: np.ndarray, rng: np.random.Generator, size: int = SIZE):
    """Places `digits` (k x 28 x 28 uint8, in order) on one canvas.

    Returns:
      (image uint8 SxS, mask uint8 SxS, instances uint8 SxS, positions [(y, x)] of the digits).
    """
    image = np.zeros((size, size), np.uint8)
    mask = np.zeros((size, size), np.uint8)
    instances = np.zeros((size, size), np.uint8)
    positions = []
    d = digits.shape[1]
    for k, (digit, label) in enumerate(zip(digits, labels, strict=True)):
        fg = digit > THRESHOLD
        area = max(int(fg.sum()), 1)
        best = None
        for _ in range(_TRIES):
            y, x = (int(v) for v in rng.integers(0, size - d + 1, size=2))
            overlap = int((mask[y : y + d, x : x + d][fg] > 0).sum()) / area
            if best is None or overlap < best[0]:
                best = (overlap, y, x)
            if overlap <= MAX_OVERLAP:
                break
        _, y, x = best
        window = (slice(y, y + d), slice(x, x + d))
        np.maximum(image[window], digit, out=image[window])
        mask[window][fg] = 1 + int(label)
        instances[window][fg] = k + 1
        positions.append((y, x))
    return image, mask, instances, positions


def canvas(source_images, source_labels, seed: int, split: str, index: int, size: int = SIZE):
    """Canvas `index` of `split`: (image, mask, instances, [(source index, y, x)] of its digits)."""
    rng = np.random.default_rng([seed, SPLITS[split], index])
    count = int(rng.integers(DIGITS[0], DIGITS[1] + 1))
    picks = rng.integers(0, len(source_images), size=count)
    image, mask, inst, positions = compose(source_images[picks], source_labels[picks], rng, size)
    return image, mask, inst, [(int(p), y, x) for p, (y, x) in zip(picks, positions, strict=True)]


def load_mnist(split: str, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST's `split` from TFDS: (N x 28 x 28 uint8, N int labels), TFDS order.

    Raises:
      FileNotFoundError: MNIST is not prepared (`python -m jaxcnn.data.prepare mnist_canvas` prepares it
        first; this module does not import jaxcnn.data.prepare, which imports it).
    """
    import tensorflow_datasets as tfds

    builder = tfds.builder("mnist", data_dir=data_dir)
    if not builder.is_prepared():
        raise FileNotFoundError(
            f"MNIST is not prepared in {builder.data_dir}; run: python -m jaxcnn.data.prepare mnist"
        )
    data = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, shuffle_files=False))
    return data["image"][..., 0], data["label"].astype(np.int64)


def settings(counts: dict[str, int], size: int, seed: int) -> dict:
    return {
        "counts": dict(counts),
        "size": size,
        "seed": seed,
        "digits": list(DIGITS),
        "threshold": THRESHOLD,
        "max_overlap": MAX_OVERLAP,
    }


def is_prepared(root: Path, expected: dict | None = None) -> bool:
    """ROOT holds a complete dataset (with the `expected` settings, when given)."""
    marker = Path(root) / _MARKER
    if not marker.is_file():
        return False
    return expected is None or json.loads(marker.read_text()) == expected


def _write_split(out: Path, split: str, count: int, size: int, seed: int, source) -> None:
    from PIL import Image

    source_images, source_labels = source
    for sub in ("images", "masks", "instances"):
        (out / split / sub).mkdir(parents=True)

    def write(i):
        arrays = canvas(source_images, source_labels, seed, split, i, size)[:3]
        for sub, array in zip(("images", "masks", "instances"), arrays, strict=True):
            Image.fromarray(array).save(out / split / sub / f"{i:05d}.png")

    # zlib releases the GIL while it compresses.
    with concurrent.futures.ThreadPoolExecutor(min(4, os.cpu_count() or 1)) as pool:
        list(pool.map(write, range(count)))


def prepare(
    root: str | Path | None = None,
    data_dir: str | None = None,
    *,
    num_train: int = DEFAULT_COUNTS["train"],
    num_test: int = DEFAULT_COUNTS["test"],
    size: int = SIZE,
    seed: int = 0,
    sources: dict | None = None,
) -> Path:
    """Writes mnist_canvas under `root` (default: default_root(data_dir)); returns ROOT.

    A complete dataset with the same settings is kept. Otherwise the dataset is written to
    ROOT.partial and moved into place when complete, replacing an earlier mnist_canvas there.
    `sources` ({split: (images, labels)}, default: load_mnist) lets tests read MNIST once.

    Raises:
      ValueError: a bad count or size, or ROOT exists and is not an mnist_canvas.
    """
    for key, value in (("num_train", num_train), ("num_test", num_test)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"mnist_canvas: {key} must be a positive int, got {value!r}")
    if size < 28:
        raise ValueError(f"mnist_canvas: the canvas size must be >= 28 (an MNIST digit), got {size}")
    root = Path(root).expanduser() if root else default_root(data_dir)
    wanted = settings({"train": num_train, "test": num_test}, size, seed)
    if is_prepared(root, wanted):
        return root
    if root.exists() and any(root.iterdir()) and not (root / _MARKER).is_file():
        raise ValueError(
            f"{root} exists and is not a complete mnist_canvas: delete it or choose another --out"
        )
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for split, count in wanted["counts"].items():
        source = sources[split] if sources else load_mnist(split, data_dir)
        _write_split(partial, split, count, size, seed, source)
    (partial / "classes.txt").write_text("\n".join(CLASS_NAMES) + "\n")
    (partial / _MARKER).write_text(json.dumps(wanted, indent=1) + "\n")
    if root.exists():
        shutil.rmtree(root)
    partial.rename(root)
    return root
