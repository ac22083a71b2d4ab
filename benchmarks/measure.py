"""Measures one peer's train step on one network, in this process; prints one JSON line.

    python -m benchmarks.measure --peer jaxcnn --network resnet50 --batch_size 16 --samples 3
    python -m benchmarks.measure --peer torch --network mobilenet_v2 --batch_size 2 --image_size 32
    python -m benchmarks.measure --peer torch_compile --network resnet50 --batch_size 256 --mode accelerator

run.py launches one such process per (peer, network) so that compile time and peak memory belong
to that measurement alone. Protocol, the same for every peer:
  1. build the network, optimizer and a synthetic batch; note the resident memory (baseline);
  2. first step: its wall time includes tracing and compilation (Keras, jaxcnn, torch.compile) or
     the first allocations (PyTorch eager); compile_s = first step - steady step;
  3. one warm step, which also sets how many steps one timed window holds (>= MIN_WINDOW_S[mode]);
  4. `samples` timed windows; step time = the median window / its steps (robust to other load).
Modes (step_common.MODES): "cpu" computes in float32 and waits for each step's loss (one host sync
per step); "accelerator" computes in bfloat16 and dispatches a window's steps back to back with one
sync at its end, as a training loop keeps a GPU/TPU busy (at least MIN_ACCELERATOR_STEPS a window).
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

from benchmarks.step_common import MODES, PRECISION
from jaxcnn import host_memory

MIN_WINDOW_S = {"cpu": 0.2, "accelerator": 1.0}
MIN_ACCELERATOR_STEPS = 10
PEERS = ("jaxcnn", "keras", "torch", "torch_compile")


def rss_mb() -> float:
    """The current resident set of this process in MiB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def measure(
    peer: str,
    network: str,
    batch_size: int,
    samples: int,
    image_size: int = 0,
    mode: str = "cpu",
    window_steps: int = 0,
) -> dict:
    """Builds `peer`'s train step for `network` and times it (see the module docstring).

    window_steps: steps in each timed window; 0 sizes the windows from the warm step.
    """
    if samples < 1 or window_steps < 0:
        raise ValueError(f"samples must be >= 1 and window_steps >= 0, got {samples} and {window_steps}")
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    precision = PRECISION[mode]
    start = time.perf_counter()
    module = importlib.import_module(f"benchmarks.step_{peer}")
    import_s = time.perf_counter() - start
    start = time.perf_counter()
    step = module.build(network, batch_size, image_size, precision)
    build_s = time.perf_counter() - start
    baseline_mb = rss_mb()

    start = time.perf_counter()
    loss = step.run()
    first_step_s = time.perf_counter() - start
    start = time.perf_counter()
    step.run()
    warm_s = time.perf_counter() - start
    min_steps = MIN_ACCELERATOR_STEPS if mode == "accelerator" else 1
    per_window = window_steps or max(min_steps, math.ceil(MIN_WINDOW_S[mode] / warm_s))
    windows = []
    for _ in range(samples):
        start = time.perf_counter()
        if mode == "accelerator":
            for _ in range(per_window):
                step.step()
            loss = step.sync()  # the window's one host sync
        else:
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
        "mode": mode,
        "precision": precision,
        "steps_per_window": per_window,
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
    parser.add_argument("--peer", required=True, choices=PEERS)
    parser.add_argument("--network", required=True, help="the peer's name of the network")
    parser.add_argument("--batch_size", type=int, required=True)
    parser.add_argument("--samples", type=int, default=3, help="timed windows")
    parser.add_argument("--image_size", type=int, default=0, help="0: the native resolution")
    parser.add_argument("--mode", default="cpu", choices=MODES, help="see the module docstring")
    parser.add_argument("--window_steps", type=int, default=0, help="steps per window; 0: sized by time")
    args = parser.parse_args(argv)
    if args.peer == "jaxcnn" and argv is None:  # as a command, not when called from Python
        host_memory.use_mimalloc()  # the allocator jaxcnn.main trains with (jaxcnn/host_memory.py)
    try:
        sizes = (args.batch_size, args.samples, args.image_size)
        result = measure(args.peer, args.network, *sizes, args.mode, args.window_steps)
    except (ValueError, FloatingPointError) as e:
        sys.exit(f"error: {e}")
    print("RESULT " + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
