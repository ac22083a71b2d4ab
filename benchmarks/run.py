"""Regenerates benchmarks/results.json and the table in benchmarks/README.md (one command).

    python -m benchmarks.run                      # the full table (about 20 min on 2 cores)
    python -m benchmarks.run --models resnet50,resnet50_v1 --batch_size 32 --peers jaxcnn,keras
    python -m benchmarks.run --mode accelerator   # the accelerator row (on a GPU/TPU host)

For each model and peer (jaxcnn, Keras 3 on JAX, torchvision eager, torchvision under torch.compile)
a fresh process measures the train step (benchmarks/measure.py), so compile time and peak memory
belong to it alone. The run also probes this machine's matmul peak (for MFU), and in CPU mode
times a cold and a cached launch to the first step and reads the input pipeline's rate if
benchmarks/input_pipeline.json exists.

--mode (default auto: accelerator when JAX's default backend is not the CPU) sets the defaults:
  cpu:         float32, one sync per step, each model's CPU batch, peers jaxcnn,keras,torch, every
               model; results.json and the README's CPU table.
  accelerator: bfloat16, windows of steps with one sync each, batch 256, peers
               jaxcnn,torch,torch_compile, resnet50; a bfloat16 matmul peak; the input pipeline
               measured in the same run (--input_pipeline_images, all cores); results_accelerator.json
               and the README's accelerator block.
Explicit flags override those defaults (tests run the accelerator mode on a CPU at tiny sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from benchmarks import environment, first_step, proc, report, workloads
from benchmarks.step_common import MODES, PRECISION

HERE = Path(__file__).resolve().parent
INPUT_PIPELINE_JSON = HERE / "input_pipeline.json"
ACCELERATOR_BATCH = 256  # the accelerator row's batch (issue 12: ResNet-50, bf16, batch 256)


def model_gflop_per_image(model: str, image_size: int = 0) -> float:
    """Train-step FLOPs of one image in GFLOP: 3 x forward MACs x 2 (forward, two backward GEMMs).

    The forward MACs are the registered reference GMACs at the native resolution, else counted by
    jaxcnn.summary at `image_size`.
    """
    from jaxcnn import model_info, summary

    info = model_info(model)
    gmacs = None if image_size else info.gmacs
    if gmacs is None:
        shape = (image_size, image_size, info.input_size[-1]) if image_size else None
        gmacs = summary(model, shape, print_fn=None).macs / 1e9
    return 6 * gmacs


def resolve_mode(mode: str) -> str:
    """ "auto" -> "accelerator" when JAX's default backend is a GPU/TPU, else "cpu"."""
    if mode != "auto":
        return mode
    import jax

    return "cpu" if jax.default_backend() == "cpu" else "accelerator"


def measure_peer(
    peer: str,
    network: str,
    batch_size: int,
    samples: int,
    image_size: int,
    timeout: float,
    mode: str = "cpu",
    window_steps: int = 0,
) -> dict:
    """One (peer, network) measurement in its own process; {"error": ...} if it failed."""
    args = ["-m", "benchmarks.measure", "--peer", peer, "--network", network]
    args += ["--batch_size", str(batch_size), "--samples", str(samples), "--image_size", str(image_size)]
    args += ["--mode", mode, "--window_steps", str(window_steps)]
    try:
        return proc.run_child(args, timeout=timeout)
    except RuntimeError as e:
        return {"peer": peer, "network": network, "error": str(e)[-300:]}


def median_round(measurements: list[dict]) -> dict:
    """Of one (model, peer)'s rounds, the measurement with the median step time (the lower middle of
    an even count), with every round's step time under "step_s_rounds"; an error if all failed."""
    ok = sorted((m for m in measurements if "step_s" in m), key=lambda m: m["step_s"])
    if not ok:
        return measurements[-1]
    return {**ok[(len(ok) - 1) // 2], "step_s_rounds": [m.get("step_s") for m in measurements]}


def read_input_pipeline(path: Path) -> dict | None:
    """The input pipeline's results ({"images_per_second": x or {"224": x, ...}}), None if absent."""
    if not path.is_file():
        return None
    with open(path) as f:
        return json.load(f)


def measure_input_pipeline(images: int, threads: int, timeout: float) -> dict:
    """The input pipeline's rate (benchmarks/input_pipeline.py) in its own process; {"error"} if failed."""
    batch = max(1, min(64, images // 8))
    args = ["-m", "benchmarks.input_pipeline", "--images", str(images), "--batch", str(batch)]
    args += ["--threads", str(threads), "--result"]
    try:
        return proc.run_child(args, timeout=timeout)
    except RuntimeError as e:
        return {"error": str(e)[-300:]}


def run(
    models: list[str],
    peers: list[str],
    batch_size: int = 0,
    samples: int = 3,
    image_size: int = 0,
    first_step_model: str = "resnet50",
    timeout: float = 900,
    matmul_size: int = 4096,
    log=print,
    rounds: int = 1,
    mode: str = "cpu",
    window_steps: int = 0,
    input_pipeline_images: int = 0,
) -> dict:
    """Measures everything and returns the results dict (see report.py for how it is shown).

    batch_size and image_size: 0 takes each model's default batch and native resolution.
    rounds: how many times each (model, peer) is measured, round-robin over the whole table so that
    a slow spell of a shared machine falls on all peers alike; each keeps its median round.
    mode: "cpu" or "accelerator" (benchmarks/measure.py); window_steps: steps per timed window
    (0: sized by time). input_pipeline_images: > 0 measures the input pipeline on that many
    generated images with every core; 0 reads benchmarks/input_pipeline.json if it exists.
    """
    results = environment.describe()
    results["load_before"] = environment.load_average()
    results["settings"] = {
        "mode": mode,
        "precision": PRECISION[mode],
        "samples": samples,
        "window_steps": window_steps or "by time",
        "peers": peers,
        "batch_size": batch_size or "per model",
        "image_size": image_size or "native",
        "rounds": rounds,
    }
    if mode == "accelerator":
        results["accelerator"] = environment.accelerator()
    probe = ["-m", "benchmarks.matmul_peak", "--size", str(matmul_size), "--dtype", PRECISION[mode]]
    log("matmul peak ...")
    results["matmul"] = proc.run_child(probe, timeout=timeout)
    rows, pairs = [], []  # pairs: (row, peer, the peer's network) for each measurement
    for model in models:
        workload = workloads.get(model)
        row = {
            "model": model,
            "batch_size": batch_size or workload.batch_size,
            "gflop_per_image": model_gflop_per_image(model, image_size),
            "note": workload.note,
        }
        rows.append(row)
        for peer in peers:
            network = workloads.peer_network(workload, peer)
            if network is not None:
                pairs.append((row, peer, network))
    measured = [[] for _ in pairs]  # one measurement per round for each pair
    for r in range(rounds):
        for (row, peer, network), rounds_so_far in zip(pairs, measured):
            batch = row["batch_size"]
            log(f"round {r + 1}/{rounds}, {row['model']}: {peer} {network} at batch {batch} ...")
            how = (samples, image_size, timeout, mode, window_steps)
            rounds_so_far.append(measure_peer(peer, network, batch, *how))
    for (row, peer, _), rounds_of_pair in zip(pairs, measured):
        row[peer] = median_round(rounds_of_pair)
    results["rows"] = rows
    # The peak is a property of the machine: other jobs can only lower a reading, so the best of a
    # probe before and one after the measurements is the estimate.
    log("matmul peak again ...")
    after = proc.run_child(probe, timeout=timeout)
    results["matmul"] = {k: max(v, after[k]) for k, v in results["matmul"].items()}
    for row in rows:
        for peer in peers:
            if "images_per_s" in row.get(peer, {}):
                flops = row[peer]["images_per_s"] * row["gflop_per_image"]
                row[peer]["mfu"] = flops / results["matmul"]["peak_gflops"]
    if first_step_model:
        log(f"time to first step: {first_step_model}, cold then cached ...")
        batch = batch_size or workloads.get(first_step_model).batch_size
        results["first_step"] = first_step.time_to_first_step(first_step_model, batch, image_size, timeout)
    if input_pipeline_images:
        threads = os.cpu_count()
        log(f"input pipeline: {input_pipeline_images} generated ImageNet JPEGs, {threads} threads ...")
        results["input_pipeline"] = measure_input_pipeline(input_pipeline_images, threads, timeout)
    else:
        results["input_pipeline"] = read_input_pipeline(INPUT_PIPELINE_JSON)
    results["load_after"] = environment.load_average()
    return results


def parse_list(value: str, allowed: tuple[str, ...], what: str) -> list[str]:
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise argparse.ArgumentTypeError(f"unknown {what} {bad or value!r}; known: {', '.join(allowed)}")
    return items


def main(argv=None) -> None:
    all_models = tuple(w.model for w in workloads.WORKLOADS)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", default="auto", choices=("auto", *MODES), help="see the module docstring")
    parser.add_argument("--models", default=None, help="comma-separated jaxcnn names (default: by mode)")
    parser.add_argument("--peers", default=None, help=f"of {','.join(workloads.PEERS)} (default: by mode)")
    parser.add_argument("--batch_size", type=int, default=None, help="0: each model's default batch")
    parser.add_argument("--steps", type=int, default=3, help="timed windows per measurement")
    parser.add_argument("--window_steps", type=int, default=0, help="steps per window; 0: sized by time")
    parser.add_argument("--rounds", type=int, default=1, help="measurements per (model, peer)")
    parser.add_argument("--image_size", type=int, default=0, help="0: each model's native resolution")
    parser.add_argument("--first_step_model", default=None, help="'' skips the launch timing")
    parser.add_argument("--input_pipeline_images", type=int, default=None, help="0: read input_pipeline.json")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per measurement")
    parser.add_argument("--matmul_size", type=int, default=None, help="n of the n x n matmul peak probe")
    parser.add_argument("--out", default=None, help="default: results.json (cpu), results_accelerator.json")
    parser.add_argument("--readme", default=str(HERE / "README.md"), help="'' leaves it alone")
    args = parser.parse_args(argv)
    mode = resolve_mode(args.mode)
    accelerator = mode == "accelerator"
    defaults = {
        "models": "resnet50" if accelerator else ",".join(all_models),
        "peers": ",".join(workloads.ACCELERATOR_PEERS if accelerator else workloads.CPU_PEERS),
        "batch_size": ACCELERATOR_BATCH if accelerator else 0,
        "first_step_model": "" if accelerator else "resnet50",
        "input_pipeline_images": 1024 if accelerator else 0,
        "matmul_size": 8192 if accelerator else 4096,
        "out": str(HERE / ("results_accelerator.json" if accelerator else "results.json")),
    }
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    try:
        models = parse_list(args.models, all_models, "model(s)")
        peers = parse_list(args.peers, workloads.PEERS, "peer(s)")
        sizes = (args.batch_size, args.image_size, args.window_steps, args.input_pipeline_images)
        if min(sizes) < 0 or min(args.steps, args.rounds, args.matmul_size) < 1:
            raise argparse.ArgumentTypeError(
                f"--batch_size, --image_size, --window_steps and --input_pipeline_images must be >= 0, "
                f"--steps, --rounds and --matmul_size >= 1; got {args.batch_size}, {args.image_size}, "
                f"{args.window_steps}, {args.input_pipeline_images}, {args.steps}, {args.rounds}, "
                f"{args.matmul_size}"
            )
        if args.first_step_model:
            workloads.get(args.first_step_model)
    except (argparse.ArgumentTypeError, ValueError) as e:
        parser.error(str(e))
    log = lambda msg: print(msg, file=sys.stderr, flush=True)
    results = run(
        models,
        peers,
        args.batch_size,
        args.steps,
        args.image_size,
        args.first_step_model,
        args.timeout,
        args.matmul_size,
        log,
        args.rounds,
        mode,
        args.window_steps,
        args.input_pipeline_images,
    )
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    table = report.render(results)
    if args.readme:
        report.update_readme(args.readme, table, accelerator=accelerator)
    print(table)


if __name__ == "__main__":
    main()
