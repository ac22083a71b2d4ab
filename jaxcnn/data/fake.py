"""Small fake datasets in the real on-disk layouts, for tests and benchmarks without the real data.

    python -m jaxcnn.data.fake imagenet2012 DIR     # DIR/ILSVRC2012_img_{train,val}.tar
    python -m jaxcnn.data.fake image_folder DIR     # DIR/{train,test}/<label>/*.jpg
                                                    # (a recipe evaluating "validation" reads test)
    python -m jaxcnn.data.fake cifar10 DIR          # DIR/cifar-10-binary.tar.gz

The ILSVRC2012 tars have the layout TFDS's imagenet2012 builder reads: the train tar holds one tar
per synset (n01440764.tar) of JPEGs named like n01440764_10026.JPEG; the validation tar holds
ILSVRC2012_val_00000001.JPEG, ... whose labels TFDS takes, in sorted file-name order, from its own
validation_labels.txt. The fake's classes are the synsets of its validation images, so both splits
share them. The CIFAR archives hold the binary version's records (label bytes, then 3,072 bytes of
R, G, B planes).
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
import tarfile
from pathlib import Path

import numpy as np


def random_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A uint8 RGB image: a random colour gradient plus noise (distinct, compressible, not flat)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    corners = rng.uniform(0, 255, size=(3, 3))
    image = (
        corners[0]
        + corners[1] * (y / max(1, height - 1))[..., None] / 2
        + corners[2] * (x / width)[..., None] / 2
    )
    image = image / image.max() * 230 + rng.normal(0, 12, size=(height, width, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def jpeg_bytes(image: np.ndarray, quality: int = 90) -> bytes:
    import tensorflow as tf

    return tf.io.encode_jpeg(image, quality=quality).numpy()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _sizes(rng, count: int, size: tuple[int, int]) -> list[tuple[int, int]]:
    """Alternating landscape and portrait (height, width) around `size`."""
    h, w = size
    out = []
    for i in range(count):
        jitter = int(rng.integers(0, max(1, h // 4)))
        out.append((h + jitter, w + jitter) if i % 2 == 0 else (w + jitter, h + jitter))
    return out


def write_ilsvrc2012(
    manual_dir: str | Path, num_val: int = 6, train_per_class: int = 3, size=(48, 64), seed: int = 0
) -> dict:
    """Writes ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar into `manual_dir`.

    Returns:
      {"classes": the synsets, "num_train": ..., "num_val": ...,
       "val_labels": {file name: synset} as TFDS will assign them}.
    """
    import tensorflow_datasets as tfds

    labels_file = tfds.core.tfds_path("datasets/imagenet2012/validation_labels.txt")
    val_synsets = labels_file.read_text().split()[:num_val]  # TFDS: sorted names <-> these lines
    classes = sorted(set(val_synsets))
    rng = np.random.default_rng(seed)
    manual_dir = Path(manual_dir)
    manual_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(manual_dir / "ILSVRC2012_img_train.tar", "w") as train:
        for synset in classes:
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as per_class:
                for k, (h, w) in enumerate(_sizes(rng, train_per_class, size), start=1):
                    _add(per_class, f"{synset}_{k}.JPEG", jpeg_bytes(random_image(rng, h, w)))
            _add(train, f"{synset}.tar", inner.getvalue())
    val_labels = {}
    with tarfile.open(manual_dir / "ILSVRC2012_img_val.tar", "w") as val:
        for i, (h, w) in enumerate(_sizes(rng, num_val, size), start=1):
            name = f"ILSVRC2012_val_{i:08d}.JPEG"
            _add(val, name, jpeg_bytes(random_image(rng, h, w)))
            val_labels[name] = val_synsets[i - 1]
    return {
        "classes": classes,
        "num_train": len(classes) * train_per_class,
        "num_val": num_val,
        "val_labels": val_labels,
    }


def write_image_folder(
    root: str | Path,
    splits=(("train", 6), ("test", 5)),
    labels=("cat", "dog"),
    size=(40, 56),
    seed: int = 0,
    suffix: str = ".jpg",
) -> Path:
    """Writes root/split/label/label_NNN.jpg: for each (split, n), n images per label."""
    rng = np.random.default_rng(seed)
    root = Path(root)
    for split, count in splits:
        for label in labels:
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for k, (h, w) in enumerate(_sizes(rng, count, size)):
                (folder / f"{label}_{k:03d}{suffix}").write_bytes(jpeg_bytes(random_image(rng, h, w)))
    return root


CIFAR_LAYOUT = {
    # name: (archive, folder inside, train files, test files, label files, label bytes per record)
    "cifar10": (
        "cifar-10-binary.tar.gz",
        "cifar-10-batches-bin",
        [f"data_batch_{i}.bin" for i in range(1, 6)],
        ["test_batch.bin"],
        {"batches.meta.txt": 10},
        1,
    ),
    "cifar100": (
        "cifar-100-binary.tar.gz",
        "cifar-100-binary",
        ["train.bin"],
        ["test.bin"],
        {"coarse_label_names.txt": 20, "fine_label_names.txt": 100},
        2,
    ),
}


def write_cifar(out_dir: str | Path, name: str = "cifar10", num_train: int = 20, num_test: int = 7, seed=0):
    """Writes the binary-version archive of `name` with fake records; returns (archive path, records).

    records: {"train": [(label, image)], "test": [...]} in file order, label the fine label.
    """
    archive, folder, train_files, test_files, label_files, label_bytes = CIFAR_LAYOUT[name]
    rng = np.random.default_rng(seed)
    num_classes = list(label_files.values())[-1]
    records = {"train": [], "test": []}
    out = Path(out_dir) / archive
    out.parent.mkdir(parents=True, exist_ok=True)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for split, files, count in (("train", train_files, num_train), ("test", test_files, num_test)):
            per_file = np.array_split(np.arange(count), len(files))
            for file, indices in zip(files, per_file):
                data = bytearray()
                for _ in indices:
                    label = int(rng.integers(num_classes))
                    image = random_image(rng, 32, 32)
                    coarse = [label % 20] if label_bytes == 2 else []
                    data += bytes(coarse + [label]) + image.transpose(2, 0, 1).tobytes()
                    records[split].append((label, image))
                _add(tar, f"{folder}/{file}", bytes(data))
        for file, n in label_files.items():
            _add(tar, f"{folder}/{file}", "\n".join(f"class_{i}" for i in range(n)).encode() + b"\n")
    out.write_bytes(gzip.compress(raw.getvalue()))
    return out, records


def write_imagenette(out_dir: str | Path, per_class: int = 2, seed: int = 0) -> Path:
    """Writes imagenette2.tgz (imagenette2/{train,val}/<synset>/*.JPEG, TFDS's default config)."""
    import tensorflow_datasets as tfds

    synsets = tfds.core.tfds_path("image_classification/imagenette_labels.txt").read_text().split()
    out_dir = Path(out_dir)
    splits = (("train", per_class), ("val", 1))
    tree = write_image_folder(out_dir / "tree" / "imagenette2", splits, synsets, seed=seed, suffix=".JPEG")
    with tarfile.open(out_dir / "imagenette2.tgz", "w:gz") as tar:
        tar.add(tree, arcname="imagenette2")
    return out_dir / "imagenette2.tgz"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxcnn.data.fake", description=__doc__)
    parser.add_argument("kind", choices=("imagenet2012", "image_folder", "cifar10", "cifar100"))
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    if args.kind == "imagenet2012":
        facts = write_ilsvrc2012(args.out_dir)
        print(
            f"ILSVRC2012 tars ({facts['num_train']} train, {facts['num_val']} val images) in {args.out_dir}"
        )
    elif args.kind == "image_folder":
        print(f"image folder in {write_image_folder(args.out_dir)}")
    else:
        print(f"{write_cifar(args.out_dir, args.kind)[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
