"""The run directory's ownership and identity: one writer per workdir, and the manifest of its run.

Ownership: a run holds an exclusive `fcntl.flock` on WORKDIR/.lock for its whole life. The lock
belongs to an open file descriptor, so the kernel releases it when the process ends in any way
(kill -9 included): no stale lock is ever left to clean up. The file holds the holder's PID and host,
so a second run on the same workdir stops at once with one line naming them. `python -m
jaxcnn.evaluate` takes the same exclusive lock: it reads the latest checkpoint (which a training run
may delete under it, keeping the last N) and merges into eval_results.json (two evaluations would
race on that file), so it waits for no one and refuses while anything else holds the workdir.

Identity: WORKDIR/config.json, the manifest, records the resolved config, the jaxcnn version, the git
commit when known, the devices, the process count and the start time. A resumed run compares its
config with the manifest: a change to a key that defines the experiment is refused in one line listing
the changed keys, unless config.resume.allow_changes names them; allowed changes are recorded in the
manifest's "allowed_changes" history. Which keys are free to change is the explicit table FREE_KEYS;
every other key (including any key added later) defines the experiment.
"""

from __future__ import annotations

import datetime
import fcntl
import json
import os
import socket
import subprocess
import warnings

LOCK_FILE = ".lock"
MANIFEST_FILE = "config.json"

# Keys (or groups, ending in ".") that a resumed run may change without asking: they say how the run is
# logged, checkpointed, evaluated extra or laid out on devices, not what is trained. Everything else
# (model, dataset and splits, input, batch size, duration, optimizer, schedule, loss, precision,
# grad_accum_steps, ema_decay, seed, eval.crop_ratio, ...) defines the experiment.
FREE_KEYS = {
    "log_every_steps": "how often train metrics are logged",
    "eval_every_steps": "how often the model is evaluated",
    "eval_every_epochs": "how often the model is evaluated",
    "checkpoint_every_steps": "how often checkpoints are saved",
    "checkpoint_every_epochs": "how often checkpoints are saved",
    "checkpoint.": "how many checkpoints are kept, and the best-k set",
    "eval_batch_size": "evaluation batches are padded and masked: the result does not depend on it",
    "eval.protocols": "extra protocols are logged under their own names (eval_ten_crop/, ...)",
    "eval.scales": "only the multi_scale protocol reads it, logged under its own name",
    "dataset.data_dir": "where the same prepared dataset lives",
    "dataset.folder": "where the same image folder lives",
    "input.threads": "tf.data parallelism only",
    "mesh.": "the device layout (a run saved on 8 devices resumes on 4 or 1 with the same losses)",
    "distributed.": "the process layout",
    "remat": "what is recomputed in the backward pass: memory, not the model",
    "resume.": "these settings themselves",
    "model.cpu_kernels": "XLA:CPU formulations of the same computation: speed, not the model",
}


class WorkdirBusy(ValueError):
    """Another process holds the workdir's lock."""


def is_free(key: str) -> bool:
    """Whether a dotted config key may change on resume without config.resume.allow_changes."""
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in FREE_KEYS)


class WorkdirLock:
    """An exclusive, non-blocking flock on WORKDIR/.lock, released by close() or the process's end.

    Args:
      workdir: the run directory (created when missing, unless read_only).
      purpose: a word for the holder line ("training", "evaluation"), shown to a refused second run.
      read_only: the caller may work in a directory it cannot write (an evaluation of a finished
        run): an existing lock file is opened for reading and locked all the same; without one
        nothing can be locked, and nothing else could write there either.
    """

    def __init__(self, workdir: str, purpose: str = "training", read_only: bool = False):
        self.path = os.path.join(workdir, LOCK_FILE)
        self._fd = None
        _check_workdir(workdir, create=not read_only)
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            if not read_only:
                raise ValueError(f"cannot write in workdir {workdir}: {e.strerror} ({self.path})") from None
            if os.path.exists(self.path):
                self._fd = os.open(self.path, os.O_RDONLY)
            else:
                return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(self._fd)
            os.close(self._fd)
            self._fd = None
            raise WorkdirBusy(
                f"workdir {workdir} is in use by {holder}; wait for it to end, stop it, or use another "
                f"--workdir (the lock is {self.path})"
            ) from None
        try:  # the holder line is a courtesy: a read-only lock file still locks
            os.ftruncate(self._fd, 0)
            holder = f"{purpose} PID {os.getpid()} on {socket.gethostname()} since {_now()}\n"
            os.pwrite(self._fd, holder.encode(), 0)
        except OSError:
            pass

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock; the file stays (deleting it would race a newcomer)
            self._fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _check_workdir(workdir: str, create: bool) -> None:
    if os.path.exists(workdir) and not os.path.isdir(workdir):
        raise ValueError(f"workdir {workdir} is a file, not a directory; use another --workdir")
    if create:
        try:
            os.makedirs(workdir, exist_ok=True)
        except OSError as e:
            raise ValueError(f"cannot create workdir {workdir}: {e.strerror}") from None
    elif not os.path.isdir(workdir):
        raise FileNotFoundError(f"workdir {workdir} does not exist")


def _read_holder(fd: int) -> str:
    text = os.pread(fd, 512, 0).decode(errors="replace").strip()
    return text or "another process (its PID is not written yet)"


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def git_commit() -> str | None:
    """The commit of jaxcnn's own checkout (its package directory), None outside a git repository."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def flatten(tree: dict, prefix: str = "") -> dict:
    """{"a": {"b": 1}} -> {"a.b": 1}: the dotted keys that --config.a.b=... overrides use."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_dict(config) -> dict:
    """The config as plain JSON data (tuples become lists), as the manifest stores it."""
    return json.loads(config.to_json_best_effort())


def allowed_changes(config) -> tuple[str, ...]:
    """config.resume.allow_changes as key names: "a,b" or ("a", "b")."""
    value = config.get("resume", {}).get("allow_changes", "") if hasattr(config, "get") else ""
    items = value.split(",") if isinstance(value, str) else list(value)
    return tuple(k.strip().removeprefix("config.") for k in items if k.strip())


def changed_keys(old: dict, new: dict) -> dict[str, tuple]:
    """{dotted key: (old, new)} for every defining key whose value differs ("<absent>" when missing).

    A key the old manifest lacks and the new config leaves at the base config's default is no change:
    it was added to jaxcnn after the run started, with a default that keeps what the run did.
    """
    from configs.base import base_config

    old_flat, new_flat = flatten(old), flatten(new)
    defaults = flatten(config_dict(base_config()))
    changes = {}
    for key in sorted(old_flat.keys() | new_flat.keys()):
        a, b = old_flat.get(key, "<absent>"), new_flat.get(key, "<absent>")
        if key not in old_flat and key in defaults and b == defaults[key]:
            continue
        if a != b and not is_free(key):
            changes[key] = (a, b)
    return changes


def _is_allowed(key: str, allowed: tuple[str, ...]) -> bool:
    # A group name allows its keys: "optimizer" allows optimizer.base_learning_rate.
    return any(key == a or key.startswith(a.rstrip(".") + ".") for a in allowed)


def _tuples(value):
    # JSON keeps tuples as lists; the config's sequence keys are tuples.
    if isinstance(value, dict):
        return {k: _tuples(v) for k, v in value.items()}
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def manifest_config(workdir: str):
    """The config a run recorded in WORKDIR/config.json (an ml_collections.ConfigDict), or None."""
    import ml_collections

    manifest = read_manifest(workdir)
    return None if manifest is None else ml_collections.ConfigDict(_tuples(manifest["config"]))


# The keys that change what an evaluation of a checkpoint measures (the model, its input, the split
# and the protocols' geometry); the others (optimizer, schedule, duration, ...) only shaped training.
EVALUATION_KEYS = ("model.", "dataset.name", "dataset.eval_split", "input.image_size", "input.normalize",
                   "eval.crop_ratio", "eval.scales", "precision")  # fmt: skip


def differences_from_run(config, workdir: str) -> dict[str, tuple]:
    """{key: (the run's value, config's)} for each key of EVALUATION_KEYS where config differs from
    the run's manifest ({} without a manifest): an evaluation under such a config measures another
    experiment than the run's own evaluations."""
    manifest = read_manifest(workdir)
    if manifest is None:
        return {}
    changes = changed_keys(manifest.get("config", {}), config_dict(config))
    return {k: v for k, v in changes.items() if _is_allowed(k, EVALUATION_KEYS)}


def read_manifest(workdir: str) -> dict | None:
    path = os.path.join(workdir, MANIFEST_FILE)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError(
            f"the run manifest {path} is unreadable ({e}); restore it, or delete it to record this "
            "config as the run's"
        ) from None


def check_resume(config, workdir: str, resuming: bool) -> tuple[dict | None, dict[str, tuple]]:
    """Compares config with the manifest of a resumed run; returns (manifest, allowed changes).

    Raises:
      ValueError: one line listing each changed defining key (old -> new) not named in
        config.resume.allow_changes, or naming an allow_changes entry that is no config key.
    """
    new = config_dict(config)
    allowed = allowed_changes(config)
    flat = flatten(new)
    unknown = [a for a in allowed if not any(k == a or k.startswith(a.rstrip(".") + ".") for k in flat)]
    if unknown:
        raise ValueError(f"config.resume.allow_changes names {unknown}, which are not config keys")
    if not resuming:  # nothing to resume: this config starts the run (and its manifest) afresh
        return None, {}
    manifest = read_manifest(workdir)
    if manifest is None:  # a run from before manifests: record this config from now on
        return None, {}
    changes = changed_keys(manifest.get("config", {}), new)
    refused = {k: v for k, v in changes.items() if not _is_allowed(k, allowed)}
    if refused:
        listed = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in refused.items())
        raise ValueError(
            f"resuming {workdir} with a different experiment ({listed}); use a new --workdir, or allow it "
            f"with --config.resume.allow_changes={','.join(refused)}"
        )
    return manifest, changes


def write_manifest(config, workdir: str, previous: dict | None, changes: dict[str, tuple]) -> str:
    """Writes WORKDIR/config.json atomically (a temporary file renamed over it); returns its path."""
    import jax

    import jaxcnn

    now = _now()
    history = list((previous or {}).get("allowed_changes", []))
    if changes:
        history.append({"time": now, "changes": {k: [a, b] for k, (a, b) in changes.items()}})
    devices = jax.devices()
    manifest = {
        "config": config_dict(config),
        "jaxcnn_version": jaxcnn.__version__,
        "git_commit": git_commit(),
        "devices": {"count": len(devices), "kind": devices[0].device_kind, "platform": devices[0].platform},
        "process_count": jax.process_count(),
        "host": socket.gethostname(),
        "started": now,
        "created": (previous or {}).get("created", now),
        "allowed_changes": history,
    }
    path = os.path.join(workdir, MANIFEST_FILE)
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)  # a kill leaves the old manifest or the new one, never half of one
    return path


class RunDir:
    """A training run's hold on its workdir: the lock (process 0), then the manifest checked and written.

    Use as a context manager around the whole run. Every process compares the config with the
    manifest (so all of them stop together on a refused change); only process 0 locks and writes.

    Args:
      config: the resolved (validated) config.
      workdir: the run directory.
      resuming: whether the workdir holds a checkpoint to resume from (without one, nothing is
        resumed and the manifest is simply replaced).
    """

    def __init__(self, config, workdir: str, resuming: bool):
        import jax

        self.lock = WorkdirLock(workdir, "training") if jax.process_index() == 0 else None
        try:
            previous, changes = check_resume(config, workdir, resuming)
            if changes:
                warnings.warn(
                    f"resuming {workdir} with allowed changes "
                    + "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changes.items())
                    + f" (recorded in {os.path.join(workdir, MANIFEST_FILE)})",
                    stacklevel=2,
                )
            if self.lock is not None:
                write_manifest(config, workdir, previous, changes)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.lock is not None:
            self.lock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
