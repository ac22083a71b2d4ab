"""Measures one peer's train step on one network, in this process; prints one JSON line.

    python -m benchmarks.measure --peer jaxcnn --network resnet50 --batch_size 16 --samples 3
    python -m benchmarks.measure --peer torch --network mobilenet_v2 --batch_size 2 --image_size 32

run.py launches one such process per (peer, network) so that compile time and peak memory belong
to that measurement alone. Protocol, the same for every peer:
  1. build the network, optimizer and a synthetic batch; note the resident memory (baseline);
  2. first step: its wall time includes tracing and compilation (Keras, jaxcnn) or the first
     allocations (PyTorch); compile_s = first step - steady step;
  3. one warm step, which also sets how many steps one timed window holds (>= 0.2 s);
  4. `samples` timed windows; step time = the median window / its steps (robust to other load).
Peak memory is the process's maximum resident set (ru_maxrss), reported beside the baseline.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import resource
import statistics
import sys
import time

from jaxcnn import host_memory

MIN_WINDOW_S = 0.2


def rss_mb() -> float:
    """The current resident set of this process in MiB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(peer: str, network: str, batch_size: int, samples: int, image_size: int = 0) -> dict:
    """Builds `peer`'s train step for `network` and times it (see the module docstring)."""
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    start = time.perf_counter()
    module = importlib.import_module(f"benchmarks.step_{peer}")
    import_s = time.perf_counter() - start
    start = time.perf_counter()
    step = module.build(network, batch_size, image_size)
    build_s = time.perf_counter() - start
    baseline_mb = rss_mb()

    start = time.perf_counter()
    loss = step.run()
    first_step_s = time.perf_counter() - start
    start = time.perf_counter()
    step.run()
    warm_s = time.perf_counter() - start
    per_window = max(1, math.ceil(MIN_WINDOW_S / warm_s))
    windows = []
    for _ in range(samples):
        start = time.perf_counter()
        for _ in range(per_window):
            loss = step.run()
        windows.append((time.perf_counter() - start) / per_window)
    step_s = statistics.median(windows)
    if not math.isfinite(loss):
        raise FloatingPointError(f"{peer} {network}: loss is {loss} after {samples * per_window + 2} steps")
    return {
        "peer": peer,
        "network": network,
        "batch_size": batch_size,
        "input_shape": list(step.input_shape),
        "num_params": step.num_params,
        "import_s": import_s,
        "build_s": build_s,
        "first_step_s": first_step_s,
        "compile_s": max(0.0, first_step_s - step_s),
        "step_s": step_s,
        "step_s_min": min(windows),
        "step_s_max": max(windows),
        "steps_timed": samples * per_window,
        "images_per_s": batch_size / step_s,
        "baseline_rss_mb": baseline_mb,
        "peak_rss_mb": peak_rss_mb(),
        "allocator": "mimalloc" if host_memory.preloaded() else "system",
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", required=True, choices=("jaxcnn", "keras", "torch"))
    parser.add_argument("--network", required=True, help="the peer's name of the network")
    parser.add_argument("--batch_size", type=int, required=True)
    parser.add_argument("--samples", type=int, default=3, help="timed windows (each >= 0.2 s)")
    parser.add_argument("--image_size", type=int, default=0, help="0: the native resolution")
    args = parser.parse_args(argv)
    if args.peer == "jaxcnn" and argv is None:  # as a command, not when called from Python
        host_memory.use_mimalloc()  # the allocator jaxcnn.main trains with (jaxcnn/host_memory.py)
    try:
        result = measure(args.peer, args.network, args.batch_size, args.samples, args.image_size)
    except (ValueError, FloatingPointError) as e:
        sys.exit(f"error: {e}")
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
