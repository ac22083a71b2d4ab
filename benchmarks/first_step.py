"""Time to first step: a fresh launch, cold and then again with JAX's persistent compilation cache.

    python -m benchmarks.first_step --model resnet50 --batch_size 16

Each launch is a new Python process that imports jaxcnn, builds the state (jaxcnn.build) and
runs two jaxcnn train steps, as `python -m jaxcnn.main` does when training starts. The times are
wall clock from just before the process is spawned, so interpreter start-up and imports count:
first_step_s to the end of the first step, start_s to the moment training starts computing
(first_step_s less the second, steady step). The first launch finds an empty cache directory
(cold, everything compiles), the second the entries the first wrote (JAX_COMPILATION_CACHE_DIR,
with every compilation cached: JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

from benchmarks import proc

CACHE_ENV = {"JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}


def launch(model: str, batch_size: int, image_size: int, cache_dir: str, timeout: float) -> dict:
    """One launch of the child (below) with the cache in `cache_dir`; returns its phases in s."""
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=cache_dir, **CACHE_ENV)
    args = ["-m", "benchmarks.first_step", "--child", "--model", model]
    args += ["--batch_size", str(batch_size), "--image_size", str(image_size)]
    spawned = time.time()
    child = proc.run_child(args, env=env, timeout=timeout)
    return {
        "first_step_s": child["done_at"] - spawned,
        "start_s": child["done_at"] - spawned - child["second_step_s"],
        "interpreter_s": child["started_at"] - spawned,
        "import_s": child["import_s"],
        "init_s": child["init_s"],
        "step_s": child["step_s"],
        "second_step_s": child["second_step_s"],
    }


def time_to_first_step(model: str, batch_size: int, image_size: int = 0, timeout: float = 600) -> dict:
    """Cold launch then warm launch on the same (new, temporary) cache directory.

    image_size: side of the square input; 0 = the model's native resolution.
    """
    with tempfile.TemporaryDirectory(prefix="jaxcnn-cache-") as cache_dir:
        cold = launch(model, batch_size, image_size, cache_dir, timeout)
        entries = len(os.listdir(cache_dir))
        warm = launch(model, batch_size, image_size, cache_dir, timeout)
    return {
        "model": model,
        "batch_size": batch_size,
        "image_size": image_size or "native",
        "cache_entries": entries,
        "cold": cold,
        "warm": warm,
    }


def child(model: str, batch_size: int, image_size: int) -> None:
    """The launched process: imports, state, one step; prints wall-clock marks as JSON."""
    started_at = time.time()
    from benchmarks import step_jaxcnn  # jax, flax, optax and jaxcnn

    imported_at = time.time()
    step = step_jaxcnn.build(model, batch_size, image_size)  # jaxcnn.build: compiles and runs the initialiser
    built_at = time.time()
    step.run()
    done_at = time.time()
    step.run()
    result = {
        "second_step_s": time.time() - done_at,
        "started_at": started_at,
        "done_at": done_at,
        "import_s": imported_at - started_at,
        "init_s": built_at - imported_at,
        "step_s": done_at - built_at,
    }
    print("RESULT " + json.dumps(result), flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet50")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--image_size", type=int, default=0, help="0: the native resolution")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.model, args.batch_size, args.image_size)
    else:
        json.dump(time_to_first_step(args.model, args.batch_size, args.image_size), sys.stdout, indent=1)
        print()


if __name__ == "__main__":
    main()
