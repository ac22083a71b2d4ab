"""Sweeps: the product of swept config values x seeds, each a normal run directory, run one by one.

    python -m jaxcnn.sweep --config=configs/X.py[:ARG] --workdir=DIR \
        --sweep="model.name=plain20,resnet20" [--sweep="KEY=v1,v2" ...] --seeds=N \
        [--config.KEY=VALUE ...] [--dry_run] [--jobs_file=F]

Each combination runs as `python -m jaxcnn.main` in DIR/KEY=VALUE/.../seed=S/ (one folder level per
swept key, in the order given, then the seed), with config.seed = S for S in 0..N-1. Every run is its
own process, so it holds its own workdir lock and writes its own manifest.

Rerunning the same command resumes what is unfinished and skips:
  - finished runs: the manifest's config equals the planned one (run_dir.changed_keys finds nothing)
    and metrics.jsonl holds eval/top1_error at the run's last step (jaxcnn/runs.py);
  - diverged runs (the trainer stopped on a non-finite loss; it would again, from the same
    checkpoint): delete the run's sweep_status.json to retry one;
  - runs whose lock another process holds (a second sweep worker on the same DIR, or a job of the
    jobs file): probed before starting, and a run refused by its lock after starting counts as
    skipped too.
A run whose manifest defines another experiment and holds a checkpoint is refused up front.

--dry_run prints the commands of the runs that would run; --jobs_file=F writes them one per line (for
a SLURM array, GNU parallel, one TPU VM per line). Every combination's config is loaded and checked
(jaxcnn.config_lib, jaxcnn.build.check_config) before anything runs: a bad key or value is one line.
Each run's output goes to its sweep.log; sweep_status.json records how its process ended and its wall time.
The sweep exits 1 when a run failed (an error other than a diverged loss), after trying every run.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import os
import re
import shlex
import signal
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from jaxcnn import config_lib, run_dir, runs  # noqa: E402

LOG_FILE = "sweep.log"
SWEEP_FILE = "sweep.json"  # DIR/sweep.json: what the sweep varies, in order (the report reads it)
_SAFE = re.compile(r"[^A-Za-z0-9._+\-]")
_USAGE = (
    "usage: python -m jaxcnn.sweep --config=configs/X.py[:ARG] --workdir=DIR --sweep=KEY=v1,v2 "
    "[--sweep=...] [--seeds=N] [--config.KEY=VALUE ...] [--dry_run] [--jobs_file=F]"
)


@dataclasses.dataclass
class Run:
    """One planned run: its folder name under DIR, its workdir, config and command line."""

    name: str
    workdir: str
    config: object  # the resolved ml_collections.ConfigDict
    command: list[str]  # argv with "python" first; sys.executable replaces it when run here

    def shell(self) -> str:
        return shlex.join(self.command)


@dataclasses.dataclass
class Args:
    spec: str
    workdir: str
    sweeps: list[tuple[str, list[str]]]
    seeds: int = 1
    overrides: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    dry_run: bool = False
    jobs_file: str = ""


def parse_args(argv: list[str]) -> Args:
    """The sweep's command line (argv without the program name).

    Raises:
      ValueError: one line naming the bad argument.
    """
    values: dict = {"sweeps": [], "overrides": []}
    args = iter(argv)
    for arg in args:
        name, has_value, value = arg.lstrip("-").partition("=")
        if not arg.startswith("-"):
            raise ValueError(f"unexpected argument {arg!r}; {_USAGE}")
        if name in ("dry_run", "nodry_run") and not has_value:
            values["dry_run"] = name == "dry_run"
            continue
        if not has_value:
            value = next(args, None)
            if value is None:
                raise ValueError(f"--{name} needs a value")
        if name == "config":
            values["spec"] = value
        elif name.startswith("config."):
            values["overrides"].append((name[len("config.") :], value))
        elif name == "sweep":
            values["sweeps"].append(parse_sweep(value))
        elif name == "seeds":
            if not value.isdigit() or int(value) < 1:
                raise ValueError(f"--seeds={value}: expected a positive int (seeds 0..N-1)")
            values["seeds"] = int(value)
        elif name in ("workdir", "jobs_file"):
            values[name] = value
        elif name == "dry_run":
            values["dry_run"] = value.lower() in ("true", "1")
        else:
            raise ValueError(f"unknown flag --{name}; {_USAGE}")
    for required in ("spec", "workdir"):
        if not values.get(required):
            flag = "config" if required == "spec" else required
            raise ValueError(f"--{flag} is required; {_USAGE}")
    keys = [k for k, _ in values["sweeps"]]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise ValueError(f"--sweep names {repeated[0]} twice; give all its values in one --sweep")
    fixed = sorted(set(keys) & {k for k, _ in values["overrides"]})
    if fixed:
        raise ValueError(f"{fixed[0]} is both swept (--sweep) and fixed (--config.{fixed[0]}); choose one")
    return Args(**values)


def parse_sweep(text: str) -> tuple[str, list[str]]:
    """ "KEY=v1,v2" -> (KEY, [v1, v2]); commas inside brackets belong to a value: "k=(30,60),(40,80)"."""
    key, has_value, values = text.partition("=")
    key = key.strip().removeprefix("config.")
    if not has_value or not key or not values.strip():
        raise ValueError(f"--sweep={text}: expected KEY=v1,v2,... (e.g. --sweep=model.name=plain20,resnet20)")
    if key == "seed":
        raise ValueError("--sweep=seed=...: seeds are --seeds=N (seeds 0..N-1)")
    parts, depth, current = [], 0, ""
    for char in values:
        depth += (char in "([{") - (char in ")]}")
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    if "" in parts or len(set(parts)) < len(parts):
        raise ValueError(f"--sweep={text}: values must be non-empty and distinct")
    return key, parts


def folder_name(key: str, value: str) -> str:
    """A path component that reads as the override: "model.name=plain20" (unsafe characters -> '_')."""
    return f"{key}={_SAFE.sub('_', value)}"


def plan(args: Args) -> list[Run]:
    """Every combination's Run, each config loaded and checked (nothing is run or compiled).

    Raises:
      ValueError, FileNotFoundError: one line naming the bad file, key, value or combination.
    """
    from jaxcnn import build

    base = config_lib.load_config(args.spec)
    for key, value in args.overrides:
        config_lib.override(base, key, value)
    grid = [[(key, value) for value in values] for key, values in args.sweeps]
    planned, names = [], {}
    for combo in itertools.product(*grid):
        for seed in range(args.seeds):
            config = copy.deepcopy(base)
            for key, value in combo:
                config_lib.override(config, key, value)
            config.seed = seed
            label = " ".join(f"{k}={v}" for k, v in combo) or "the base config"
            try:
                build.check_config(config)
            except (ValueError, FileNotFoundError) as e:
                raise type(e)(f"{label}: {e}") from None
            parts = [folder_name(k, v) for k, v in combo] + [f"seed={seed}"]
            name = "/".join(parts)
            if name in names:
                raise ValueError(f"{label} and {names[name]} share the folder {name}; use distinct values")
            names[name] = label
            command = ["python", "-m", "jaxcnn.main", f"--config={args.spec}"]
            command.append(f"--workdir={os.path.join(args.workdir, *parts)}")
            command += [f"--config.{k}={v}" for k, v in [*args.overrides, *combo]]
            command.append(f"--config.seed={seed}")
            planned.append(Run(name, os.path.join(args.workdir, *parts), config, command))
    return planned


def check_existing(planned: list[Run]) -> None:
    """Refuses, before anything runs, a run directory that holds a checkpoint of another experiment.

    Raises:
      ValueError: run_dir's one line (the changed keys, old -> new), naming the run.
    """
    from jaxcnn import checkpoint

    for run in planned:
        if os.path.isdir(run.workdir):
            run_dir.check_resume(run.config, run.workdir, resuming=checkpoint.has_checkpoint(run.workdir))


def skip_reason(run: Run) -> str | None:
    """Why `run` is not to be started now (finished, diverged, running elsewhere), None to start it."""
    manifest = run_dir.read_manifest(run.workdir) if os.path.isdir(run.workdir) else None
    if manifest is None:
        return None
    if run_dir.changed_keys(manifest.get("config", {}), run_dir.config_dict(run.config)):
        return None  # another experiment without a checkpoint: the run starts afresh
    state, detail = runs.state(run.workdir, run.config)
    if state in (runs.FINISHED, runs.DIVERGED, runs.RUNNING):
        return f"{state} ({detail})" if detail else state
    return None


def execute(run: Run, env: dict | None = None) -> dict:
    """Runs `run`'s command (output appended to its sweep.log); returns and records its status."""
    os.makedirs(run.workdir, exist_ok=True)
    started = time.time()
    with open(os.path.join(run.workdir, LOG_FILE), "a") as log:
        log.write(f"\n$ {run.shell()}\n")
        log.flush()
        proc = _start([sys.executable, *run.command[1:]], stdout=log, stderr=subprocess.STDOUT, env=env)
    wall = time.time() - started
    last_line = _last_line(os.path.join(run.workdir, LOG_FILE))
    if proc.returncode == 0:  # finished, or stopped by SIGTERM after saving (the trainer exits 0 then)
        outcome = runs.state(run.workdir, run.config)[0]
    elif "is in use by" in last_line or runs.is_locked(run.workdir):
        return {"outcome": "busy", "last_line": last_line}  # another worker has it: its status stands
    elif re.search(r"train/loss is -?(nan|inf)", last_line):  # the trainer's FloatingPointError
        outcome = runs.DIVERGED
    else:
        outcome = runs.FAILED
    status = {
        "outcome": outcome,
        "returncode": proc.returncode,
        "wall_seconds": round(wall, 3),
        "last_line": last_line,
        "ended": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": run.shell(),
    }
    runs.write_status(run.workdir, status)
    return status


class _Child:
    """The run's process now running, and whether the sweep was told to stop (SIGTERM)."""

    process: subprocess.Popen | None = None
    stop = False


def _on_sigterm(signum, frame) -> None:
    # A preempted sweep passes the notice on: the trainer finishes its step, saves and exits 0, and
    # the sweep stops after it; the same command resumes both.
    _Child.stop = True
    if _Child.process is not None and _Child.process.poll() is None:
        _Child.process.send_signal(signal.SIGTERM)


def _start(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """Runs one run's process to its end (the tests put a fake trainer here)."""
    with subprocess.Popen(argv, **kwargs) as process:
        _Child.process = process
        try:
            process.wait()
        except KeyboardInterrupt:  # Ctrl-C reached the trainer too: it saves and stops; let it
            process.wait()
            raise
        finally:
            _Child.process = None
    return subprocess.CompletedProcess(argv, process.returncode)


def _last_line(path: str) -> str:
    with open(path, errors="replace") as f:
        lines = [ln.strip() for ln in f.read()[-20000:].replace("\r", "\n").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def write_sweep_file(args: Args) -> None:
    """DIR/sweep.json: the swept keys and values in order and the seeds (the report reads the order)."""
    os.makedirs(args.workdir, exist_ok=True)
    record = {
        "config": args.spec,
        "sweep": {k: v for k, v in args.sweeps},
        "seeds": args.seeds,
        "overrides": {k: v for k, v in args.overrides},
    }
    runs.write_status(args.workdir, record, SWEEP_FILE)


def _final_error(workdir: str) -> str:
    records = [r for r in runs.read_metrics(workdir) if runs.FINAL_KEY in r]
    return f", test error {100 * records[-1][runs.FINAL_KEY]:.2f}%" if records else ""


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    planned = plan(args)
    check_existing(planned)
    todo, skipped = [], []
    for run in planned:
        reason = skip_reason(run)
        (skipped if reason else todo).append((run, reason))
    if args.dry_run or args.jobs_file:
        for run, reason in skipped:
            print(f"# skip {run.name}: {reason}")
        lines = [run.shell() for run, _ in todo]
        if args.jobs_file:
            with open(args.jobs_file, "w") as f:
                f.write("".join(line + "\n" for line in lines))
            print(f"wrote {len(lines)} commands to {args.jobs_file} ({len(skipped)} runs skipped)")
        else:
            print("\n".join(lines))
        return 0
    write_sweep_file(args)
    counts = {"trained": 0, "skipped": len(skipped), runs.UNFINISHED: 0, runs.DIVERGED: 0, runs.FAILED: 0}
    for run, reason in skipped:
        print(f"skip {run.name}: {reason}", flush=True)
    for i, (run, _) in enumerate(todo, 1):
        if _Child.stop:
            print("stopped by SIGTERM; the same command resumes the sweep", flush=True)
            break
        reason = skip_reason(run)  # another worker may have finished or taken it meanwhile
        if reason:
            counts["skipped"] += 1
            print(f"[{i}/{len(todo)}] skip {run.name}: {reason}", flush=True)
            continue
        print(f"[{i}/{len(todo)}] run {run.name} (output in {run.workdir}/{LOG_FILE})", flush=True)
        status = execute(run)
        outcome = status["outcome"]
        if outcome == "busy":
            counts["skipped"] += 1
            print(f"[{i}/{len(todo)}] skip {run.name}: another process holds its lock", flush=True)
            continue
        key = "trained" if outcome == runs.FINISHED else outcome
        counts[key] = counts.get(key, 0) + 1
        took = f"in {status['wall_seconds']:.0f} s"
        detail = _final_error(run.workdir) if outcome == runs.FINISHED else f": {status['last_line']}"
        print(f"[{i}/{len(todo)}] {outcome} {run.name} {took}{detail}", flush=True)
    print(
        f"{len(planned)} runs in {args.workdir}: "
        + ", ".join(f"{n} {k}" for k, n in counts.items())
        + f"; the report: python -m jaxcnn.report {args.workdir}"
    )
    return 1 if counts[runs.FAILED] else 0


def run() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        code = main(sys.argv[1:])
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:
        sys.exit("interrupted (Ctrl-C); the same command resumes the sweep")
    sys.exit(code)


if __name__ == "__main__":
    run()
