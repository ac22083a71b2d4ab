"""Offline preparation from a dataset's own archives, by TFDS's own builders.

CIFAR-10/100 and Imagenette: TFDS downloads one archive (cifar-10-binary.tar.gz,
cifar-100-binary.tar.gz, imagenette2.tgz, ...). Offline, put that file in a folder and run

    python -m jaxcnn.data.prepare cifar10 --from DIR

The archive is checked against the SHA-256 that TFDS registers for its URL, extracted, and handed to
TFDS's builder as if downloaded, so the records are exactly TFDS's.

ILSVRC2012 cannot be downloaded by anyone but its registered users: put ILSVRC2012_img_train.tar and
ILSVRC2012_img_val.tar (as distributed by image-net.org) in the TFDS manual dir and run

    python -m jaxcnn.data.prepare imagenet2012 --manual_dir DIR

which runs TFDS's imagenet2012 builder on them (train: a tar of per-synset tars of JPEGs; validation:
50,000 JPEGs whose labels TFDS ships in validation_labels.txt).
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
from pathlib import Path

ARCHIVE_DATASETS = ("cifar10", "cifar100", "imagenette")
IMAGENET_TARS = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _archive_download_manager(builder, source: Path, work: Path, verify: bool):
    """A TFDS DownloadManager whose downloads are the archives in `source`, matched by file name."""
    import tensorflow_datasets as tfds

    url_infos = type(builder).url_infos or {}

    class LocalArchives(tfds.download.DownloadManager):
        def download_and_extract(self, url_or_urls):
            if isinstance(url_or_urls, dict):
                return {k: self.download_and_extract(u) for k, u in url_or_urls.items()}
            filename = url_or_urls.rsplit("/", 1)[-1]
            path = source / filename
            if not path.is_file():
                raise FileNotFoundError(f"{path} does not exist; {builder.name} needs {url_or_urls} there")
            expected = url_infos.get(url_or_urls)
            if verify and expected is not None and sha256_file(path) != expected.checksum:
                raise ValueError(
                    f"{path}: SHA-256 is not TFDS's registered {expected.checksum} for {url_or_urls}"
                )
            out = work / filename
            with tarfile.open(path) as tar:
                tar.extractall(out, filter="data")
            return out

        download = download_and_extract

    return LocalArchives(download_dir=work / "downloads")


def prepare_from_archive(name: str, source: Path, data_dir: str | None = None, verify: bool = True) -> Path:
    """Writes TFDS dataset `name` (e.g. "cifar10", "imagenette/320px-v2") from its archive in `source`.

    Args:
      verify: check the archive's SHA-256 against TFDS's registry (tests turn it off for fakes).

    Returns:
      The prepared dataset's directory.
    """
    import tensorflow_datasets as tfds

    if name.split("/")[0] not in ARCHIVE_DATASETS:
        raise ValueError(f"{name!r} is not prepared from an archive; those are {ARCHIVE_DATASETS}")
    builder = tfds.builder(name, data_dir=data_dir)
    if builder.is_prepared():
        return Path(builder.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        manager = _archive_download_manager(builder, Path(source), Path(tmp), verify)
        builder._make_download_manager = lambda **_: manager  # TFDS builds its own otherwise
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    return Path(builder.data_dir)


def prepare_imagenet2012(manual_dir: str | os.PathLike, data_dir: str | None = None) -> Path:
    """Runs TFDS's imagenet2012 builder on the ILSVRC2012 tars in `manual_dir`; returns the dataset dir."""
    import tensorflow_datasets as tfds

    manual_dir = Path(manual_dir)
    # TFDS's builder reads the validation labels whether or not it writes the train split only.
    missing = [t for t in IMAGENET_TARS if not (manual_dir / t).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{' and '.join(missing)} not in {manual_dir}; download the ILSVRC2012 tars from "
            "https://image-net.org (registration required) and place them there"
        )
    builder = tfds.builder("imagenet2012", data_dir=data_dir)
    if not builder.is_prepared():
        config = tfds.download.DownloadConfig(manual_dir=str(manual_dir), try_download_gcs=False)
        builder.download_and_prepare(download_config=config)
    return Path(builder.data_dir)
