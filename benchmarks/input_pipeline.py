"""Images per second of the ImageNet training input pipeline on this machine's CPU cores.

The pipeline is jaxcnn's own (input.train_batches): TFRecords written by TFDS's imagenet2012 builder,
streamed in shards, JPEG decode fused with the Inception random-resized crop, flip, resize to 224,
ImageNet mean/std normalisation, batching. The data are generated ILSVRC2012 tars of full-size
JPEGs (500 x 375 and 375 x 500, quality 90, like ImageNet's typical photograph), prepared by the
real builder. The tf.data thread pool is limited to 1, then 2 threads, so the rate per core is
measured rather than guessed.

    python benchmarks/input_pipeline.py                 # 768 images, threads 1 and 2
    python benchmarks/input_pipeline.py --images 256 --threads 1
    python -m benchmarks.input_pipeline --images 1024 --threads 16 --result   # as benchmarks.run does

With --result the last line is `RESULT {json}` for benchmarks/run.py (the accelerator row's input
pipeline column): the best wall-clock rate at 224 px, and each thread count's rates.

Results and the machine's load while measuring: benchmarks/input_pipeline.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np


def write_full_size_ilsvrc(manual_dir: Path, num_images: int, seed: int = 0) -> None:
    """ILSVRC2012_img_train.tar with `num_images` 500 x 375 / 375 x 500 JPEGs over 8 synsets."""
    import tensorflow_datasets as tfds

    from jaxcnn.data import fake

    synsets = tfds.core.tfds_path("datasets/imagenet2012/labels.txt").read_text().split()[:8]
    rng = np.random.default_rng(seed)
    manual_dir.mkdir(parents=True, exist_ok=True)
    with tarfile.open(manual_dir / "ILSVRC2012_img_train.tar", "w") as train:
        for c, synset in enumerate(synsets):
            inner = io.BytesIO()
            with tarfile.open(fileobj=inner, mode="w") as per_class:
                for k in range(c, num_images, len(synsets)):
                    shape = (375, 500) if k % 3 else (500, 375)
                    data = fake.jpeg_bytes(fake.random_image(rng, *shape), quality=90)
                    info = tarfile.TarInfo(f"{synset}_{k + 1}.JPEG")
                    info.size = len(data)
                    per_class.addfile(info, io.BytesIO(data))
            info = tarfile.TarInfo(f"{synset}.tar")
            info.size = len(inner.getvalue())
            train.addfile(info, io.BytesIO(inner.getvalue()))
    with tarfile.open(manual_dir / "ILSVRC2012_img_val.tar", "w") as val:  # the builder needs one
        data = fake.jpeg_bytes(fake.random_image(rng, 375, 500))
        info = tarfile.TarInfo("ILSVRC2012_val_00000001.JPEG")
        info.size = len(data)
        val.addfile(info, io.BytesIO(data))


def measure(data_dir: str, threads: int, batch: int) -> tuple[float, float, int]:
    """(images per wall-clock second, images per CPU second of this process, images timed) over one
    epoch after its first batch. On a shared machine the CPU-second rate is the per-core cost that
    other processes' load does not change; the wall-clock rate is what this process got."""
    from configs.base import base_config
    from jaxcnn.data import input as input_lib

    split = input_lib.open_split("imagenet2012", "train", data_dir)
    config = base_config()
    config.dataset.name = "imagenet2012"
    config.input.image_size, config.input.normalize = 224, "standardize"
    config.input.train_augment, config.input.extra_augment = "inception_crop", ""
    config.input.cache_max_examples, config.input.num_shards, config.input.shuffle_buffer = 0, 8, 1024
    config.input.threads = threads
    config.batch_size, config.seed = batch, 0
    steps = split.num_examples // batch
    batches = input_lib.train_batches(split, config)
    next(batches)  # start-up: opening the shards, filling the buffers
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    for _ in range(steps - 1):
        out = next(batches)
    elapsed, cpu = time.perf_counter() - start, _cpu_seconds() - cpu_start
    assert out["image"].shape == (batch, 224, 224, 3)
    count = (steps - 1) * batch
    return count / elapsed, count / cpu, count


def _cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system


def main(argv=None) -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--images", type=int, default=768)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--workdir", default="", help="reuse the generated data here (default: a temp dir)")
    parser.add_argument("--result", action="store_true", help="end with a RESULT {json} line")
    args = parser.parse_args(argv)
    if args.images < 2 * args.batch or args.batch < 1 or min(args.threads) < 1:
        parser.error(f"need --images >= 2 x --batch >= 2 and threads >= 1, got {args.images}, {args.batch}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.workdir:
        run_all(Path(args.workdir), args)
    else:
        with tempfile.TemporaryDirectory(prefix="jaxcnn_bench_") as tmp:
            run_all(Path(tmp), args)


def run_all(root: Path, args) -> None:
    from jaxcnn.data import archives

    data_dir = str(root / "tfds")
    if not (root / "manual" / "ILSVRC2012_img_train.tar").exists():
        write_full_size_ilsvrc(root / "manual", args.images)
    archives.prepare_imagenet2012(root / "manual", data_dir)
    print(f"{os.cpu_count()} CPUs; load average before: {os.getloadavg()[0]:.2f}")
    by_threads = {}
    for threads in args.threads:
        rate, per_cpu_second, count = measure(data_dir, threads, args.batch)
        by_threads[str(threads)] = {"images_per_second": rate, "images_per_cpu_second": per_cpu_second}
        print(
            f"threads={threads}: {rate:.0f} images/s wall clock ({rate / threads:.0f} per thread), "
            f"{per_cpu_second:.0f} images per CPU-second, over {count} images; "
            f"load average {os.getloadavg()[0]:.2f}"
        )
    if args.result:
        best = max(r["images_per_second"] for r in by_threads.values())
        result = {"images_per_second": {"224": best}, "threads": by_threads, "images": args.images}
        print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
