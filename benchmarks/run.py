"""Regenerates benchmarks/results.json and the table in benchmarks/README.md (one command).

    python -m benchmarks.run                      # the full table (about 20 min on 2 cores)
    python -m benchmarks.run --models resnet50,resnet50_v1 --batch_size 32 --peers jaxcnn,keras

For each model and peer (jaxcnn, Keras 3 on JAX, torchvision on PyTorch CPU) a fresh process
measures the train step (benchmarks/measure.py), so compile time and peak memory belong to it alone.
The run also probes this machine's matmul peak (for MFU), times a cold and a cached launch to the
first step, and reads the input pipeline's rate if benchmarks/input_pipeline.json exists.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from benchmarks import environment, first_step, proc, report, workloads

HERE = Path(__file__).resolve().parent
INPUT_PIPELINE_JSON = HERE / "input_pipeline.json"


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


def measure_peer(
    peer: str, network: str, batch_size: int, samples: int, image_size: int, timeout: float
) -> dict:
    """One (peer, network) measurement in its own process; {"error": ...} if it failed."""
    args = ["-m", "benchmarks.measure", "--peer", peer, "--network", network]
    args += ["--batch_size", str(batch_size), "--samples", str(samples), "--image_size", str(image_size)]
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
) -> dict:
    """Measures everything and returns the results dict (see report.py for how it is shown).

    batch_size and image_size: 0 takes each model's default batch and native resolution.
    rounds: how many times each (model, peer) is measured, round-robin over the whole table so that
    a slow spell of a shared machine falls on all peers alike; each keeps its median round.
    """
    results = environment.describe()
    results["load_before"] = environment.load_average()
    results["settings"] = {
        "samples": samples,
        "peers": peers,
        "batch_size": batch_size or "per model",
        "image_size": image_size or "native",
        "rounds": rounds,
    }
    probe = ["-m", "benchmarks.matmul_peak", "--size", str(matmul_size)]
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
            rounds_so_far.append(measure_peer(peer, network, batch, samples, image_size, timeout))
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
    parser.add_argument("--models", default=",".join(all_models), help="comma-separated jaxcnn names")
    parser.add_argument("--peers", default=",".join(workloads.PEERS), help="of jaxcnn,keras,torch")
    parser.add_argument("--batch_size", type=int, default=0, help="0: each model's default batch")
    parser.add_argument("--steps", type=int, default=3, help="timed windows per measurement")
    parser.add_argument("--rounds", type=int, default=1, help="measurements per (model, peer)")
    parser.add_argument("--image_size", type=int, default=0, help="0: each model's native resolution")
    parser.add_argument("--first_step_model", default="resnet50", help="'' skips the launch timing")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per measurement")
    parser.add_argument("--matmul_size", type=int, default=4096, help="n of the n x n matmul peak probe")
    parser.add_argument("--out", default=str(HERE / "results.json"))
    parser.add_argument("--readme", default=str(HERE / "README.md"), help="'' leaves it alone")
    args = parser.parse_args(argv)
    try:
        models = parse_list(args.models, all_models, "model(s)")
        peers = parse_list(args.peers, workloads.PEERS, "peer(s)")
        if min(args.batch_size, args.image_size) < 0 or min(args.steps, args.rounds, args.matmul_size) < 1:
            raise argparse.ArgumentTypeError(
                f"--batch_size and --image_size must be >= 0, --steps, --rounds and --matmul_size >= 1; "
                f"got {args.batch_size}, {args.image_size}, {args.steps}, {args.rounds}, {args.matmul_size}"
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
    )
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(results, f, indent=1)
    table = report.render(results)
    if args.readme:
        report.update_readme(args.readme, table)
    print(table)


if __name__ == "__main__":
    main()
