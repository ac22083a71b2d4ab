"""Run directories as results: which runs a directory holds, how long each is, and how far it got.

A run directory is one `python -m jaxcnn.main` workdir: its manifest (config.json, jaxcnn/run_dir.py),
metrics.jsonl, and, when jaxcnn.sweep launched it, sweep_status.json (how its last process ended). The sweep
decides from here what to skip, the report what to average.

A run is *finished* when its final evaluation is recorded: an eval/top1_error record at the run's
last step (config.num_train_steps, or num_epochs resolved against the training split's size). The
trainer writes that record only after the last step's checkpoint is saved, so a finished run resumed
would train nothing.
"""

from __future__ import annotations

import fcntl
import functools
import json
import math
import os

import ml_collections

from jaxcnn import durations as durations_lib
from jaxcnn import run_dir

STATUS_FILE = "sweep_status.json"  # written by jaxcnn.sweep when a run's process ends
FINISHED, UNFINISHED, DIVERGED, RUNNING, FAILED = "finished", "unfinished", "diverged", "running", "failed"
FINAL_KEY = "eval/top1_error"
# Folders a run writes inside itself; never searched for other runs.
_RUN_OUTPUTS = {"checkpoints", "best", "tensorboard", "plots", "hparams"}


def find_runs(root: str) -> list[str]:
    """Every directory under `root` (root included) that holds a manifest, sorted.

    Raises:
      FileNotFoundError: `root` is not a directory.
    """
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{root} is not a directory of runs")
    found = []
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _RUN_OUTPUTS)
        if run_dir.MANIFEST_FILE in files:
            found.append(here)
    return sorted(found)


def is_locked(workdir: str) -> bool:
    """Whether a process holds WORKDIR/.lock now (a run is training or evaluating there).

    Probes with a read-only descriptor and lets go at once, writing nothing: the holder line stays
    the real holder's.
    """
    try:
        fd = os.open(os.path.join(workdir, run_dir.LOCK_FILE), os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # releases a lock the probe took
    return False


def as_config(config) -> ml_collections.ConfigDict:
    """A manifest's config (plain JSON data) or a ConfigDict, as a ConfigDict."""
    return config if isinstance(config, ml_collections.ConfigDict) else ml_collections.ConfigDict(config)


@functools.cache
def _num_train_examples(name: str, split: str, data_dir: str, folder: str) -> int:
    from jaxcnn.data import datasets

    datasets.check_name(name)
    if name.split("/")[0] != "image_folder":  # read what is prepared; never download from here
        import tensorflow_datasets as tfds

        if not tfds.builder(name, data_dir=data_dir or None).is_prepared():
            raise FileNotFoundError(f"{name} is not prepared here")
    return datasets.open_split(name, split, data_dir or None, folder=folder or None).num_examples


def resolve_durations(config) -> durations_lib.Durations | None:
    """The run's step counts, resolved against its training split's size (opened once per dataset).

    Returns None when the split cannot be opened here (the data lives on another machine) or the
    config's durations are malformed.
    """
    config = as_config(config)
    try:
        data = config.dataset
        n = _num_train_examples(data.name, data.train_split, data.data_dir, data.folder)
        return durations_lib.resolve(config, n)
    except (ValueError, FileNotFoundError, OSError, KeyError, AttributeError):
        return None


def final_step(config) -> int | None:
    """The run's last step: num_train_steps when set, else num_epochs over the split (None: unknown)."""
    steps = as_config(config).get("num_train_steps", -1)
    if isinstance(steps, int) and steps > 0:
        return steps
    resolved = resolve_durations(config)
    return resolved.num_train_steps if resolved else None


def read_status(workdir: str) -> dict:
    """WORKDIR/sweep_status.json, or {} (never written, or unreadable)."""
    try:
        with open(os.path.join(workdir, STATUS_FILE)) as f:
            status = json.load(f)
    except (OSError, ValueError):
        return {}
    return status if isinstance(status, dict) else {}


def write_status(workdir: str, status: dict, name: str = STATUS_FILE) -> None:
    """Writes WORKDIR/sweep_status.json (or WORKDIR/name) atomically."""
    path = os.path.join(workdir, name)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(status, f, indent=2, sort_keys=True)
    os.replace(tmp, path)


def read_metrics(workdir: str) -> list[dict]:
    """WORKDIR/metrics.jsonl's records ([] when there is none yet)."""
    from jaxcnn.metric_writer import read_metrics as read

    if not os.path.exists(os.path.join(workdir, "metrics.jsonl")):
        return []
    return read(workdir)


def first_non_finite(records: list[dict]) -> tuple[int, str] | None:
    """(step, key) of the first loss or error value that is NaN or infinite, None when all are finite."""
    for record in records:
        for key, value in record.items():
            if key != "step" and ("loss" in key or "error" in key) and not math.isfinite(value):
                return record["step"], key
    return None


def state(workdir: str, config, records: list[dict] | None = None) -> tuple[str, str]:
    """(state, detail) of the run in `workdir` with `config` (its manifest's config, or the one a
    sweep plans); state is one of FINISHED, UNFINISHED, DIVERGED, RUNNING, FAILED.

    Diverged: a non-finite loss or error recorded, or the trainer stopped on one (sweep_status.json).
    Running: a process holds the workdir's lock. Finished: the final evaluation is recorded.
    Failed: its last process ended in another error (sweep_status.json). Else unfinished.
    """
    records = read_metrics(workdir) if records is None else records
    status = read_status(workdir)
    bad = first_non_finite(records)
    if bad:
        return DIVERGED, f"{bad[1]} is not finite at step {bad[0]}"
    if status.get("outcome") == DIVERGED:
        return DIVERGED, status.get("last_line", "")
    if is_locked(workdir):
        return RUNNING, "a process holds its lock"
    last = final_step(config)
    if last is not None:
        if any(r["step"] == last and FINAL_KEY in r for r in records):
            return FINISHED, f"step {last}"
    elif status.get("outcome") == FINISHED:  # the length cannot be resolved here: trust the sweep
        return FINISHED, "as its sweep recorded (the dataset is not here to check its length)"
    if status.get("outcome") == FAILED:
        return FAILED, status.get("last_line", "")
    done = max((r["step"] for r in records), default=0)
    return UNFINISHED, f"step {done} of {last if last is not None else 'unknown'}"
