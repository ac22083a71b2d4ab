"""A thin layer over orbax.checkpoint.CheckpointManager: the last N, the best k, safe restores.

Each checkpoint WORKDIR/checkpoints/<step>/ holds two items: `state` (the TrainState: parameters,
BatchNorm statistics, optimizer state, step and the RNG key) and `data` (a small JSON record of the
input pipeline's position: epoch, example offset, batch size, seed). Orbax writes each step into a
temporary directory and renames it when complete, so a process killed mid-save leaves the previous
checkpoint as the latest; a checkpoint that is complete on disk but unreadable (a truncated file, a
disk error) is moved to WORKDIR/corrupt_checkpoints/ with a warning, and the previous one is used.

A save that fails in the background (a full disk, a permission) is found at the next step (or at
the end) and raised as one CheckpointWriteError line naming the path and the cause; the checkpoints
before it are complete and untouched. Orbax's own tracebacks of that failure are not printed.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import warnings

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp

BEST_METRICS = ("eval/top1_error", "eval/top5_error", "eval/loss", "eval/pixel_error")


def check_config(checkpoint_config) -> None:
    """Checks config.checkpoint: keep > 0, keep_best >= 0 and a best_metric that is logged."""
    keep, keep_best = checkpoint_config.keep, checkpoint_config.keep_best
    if isinstance(keep, bool) or not isinstance(keep, int) or keep <= 0:
        raise ValueError(f"config.checkpoint.keep must be a positive number, got {keep!r}")
    if isinstance(keep_best, bool) or not isinstance(keep_best, int) or keep_best < 0:
        raise ValueError(f"config.checkpoint.keep_best must be >= 0, got {keep_best!r}")
    metric = checkpoint_config.best_metric
    if keep_best and metric not in BEST_METRICS:
        raise ValueError(f"config.checkpoint.best_metric={metric!r}; allowed: {', '.join(BEST_METRICS)}")


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (one line: the path, the cause, the last complete step)."""


class _OrbaxFailureTracebacks(logging.Filter):
    """Drops Orbax's ERROR records that carry a traceback (a background save that failed, logged
    from two or three threads): Checkpointer.check raises the same failure as one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        from_orbax = f"{os.sep}orbax{os.sep}" in (record.pathname or "")
        return not (from_orbax and record.levelno >= logging.ERROR and record.exc_info)


def _closed_loop_hook(previous):
    """sys.excepthook that drops `RuntimeError: Event loop is closed`: after a failed save, the
    storage layer's writes still in flight call back into Orbax's event loop, already closed, and
    each callback prints that traceback (dozens of them) through sys.excepthook."""

    def hook(kind, error, tb):
        if kind is RuntimeError and str(error) == "Event loop is closed":
            return
        previous(kind, error, tb)

    hook.jaxcnn_closed_loop = True
    return hook


def _quiet_orbax_failures() -> None:
    logger = logging.getLogger("absl")  # Orbax logs through absl, which logs through this logger
    if not any(isinstance(f, _OrbaxFailureTracebacks) for f in logger.filters):
        logger.addFilter(_OrbaxFailureTracebacks())
    if not getattr(sys.excepthook, "jaxcnn_closed_loop", False):
        sys.excepthook = _closed_loop_hook(sys.excepthook)


def _manager(directory: str, keep: int, best_metric: str | None = None, create: bool = True):
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        create=create,
        best_fn=(lambda metrics: metrics[best_metric]) if best_metric else None,
        best_mode="min",
    )
    handlers = {"state": ocp.StandardCheckpointHandler(), "data": ocp.JsonCheckpointHandler()}
    return ocp.CheckpointManager(directory, options=options, item_handlers=handlers)


def _save_args(state, data: dict) -> ocp.args.Composite:
    # The train step donates the state's buffers, and the save finishes in the background: hand
    # Orbax a copy, or the next step may overwrite (or free) what is still being written.
    snapshot = jax.tree.map(jnp.copy, state)
    return ocp.args.Composite(state=ocp.args.StandardSave(snapshot), data=ocp.args.JsonSave(data))


def has_checkpoint(workdir: str) -> bool:
    """Whether WORKDIR/checkpoints holds a finished checkpoint (an unfinished save is a temporary
    directory, not a step number); reads the directory only, creates nothing."""
    directory = os.path.join(workdir, "checkpoints")
    return os.path.isdir(directory) and any(name.isdigit() for name in os.listdir(directory))


class Checkpointer:
    """Saves under WORKDIR/checkpoints every `every_steps` (keeping `keep`) and, with keep_best > 0,
    the best `keep_best` evaluations by `best_metric` (lower is better) under WORKDIR/best."""

    def __init__(self, workdir: str, every_steps: int, keep: int, keep_best: int = 0, best_metric: str = ""):
        self.workdir = os.path.abspath(workdir)
        self.every_steps = every_steps
        self._in_flight: int | None = None  # the step of the last save handed to Orbax
        _quiet_orbax_failures()
        self.manager = _manager(os.path.join(self.workdir, "checkpoints"), keep)
        self.best = (
            _manager(os.path.join(self.workdir, "best"), keep_best, best_metric) if keep_best else None
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def restore(self, state, best: bool = False) -> tuple[object, dict | None]:
        """The newest readable checkpoint (or the best one) restored onto `state`'s shapes and shardings.

        Returns (state, data record), or (state, None) unchanged when there is no checkpoint. The
        shardings come from `state`, so a run saved on 8 devices restores onto 4 or 1.
        """
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)
        args = ocp.args.Composite(state=ocp.args.StandardRestore(abstract), data=ocp.args.JsonRestore())
        if best:
            step = self.best.best_step() if self.best is not None else None
            if step is None:
                return state, None
            restored = self.best.restore(step, args=args)
            return restored.state, dict(restored.data)
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                restored = self.manager.restore(step, args=args)
            except Exception as e:  # noqa: BLE001 - an unreadable checkpoint: set it aside, go back one
                self._refuse_another_model(step, abstract)
                self._set_aside(step, e)
                continue
            return restored.state, dict(restored.data)
        return state, None

    def _refuse_another_model(self, step: int, abstract) -> None:
        """A readable checkpoint of other shapes is not corrupt: it belongs to another model or
        optimizer (a changed config in the same workdir). Stop rather than set aside good work."""
        try:
            saved = self.manager.item_metadata(step)["state"]
        except Exception:  # noqa: BLE001 - the metadata is unreadable too: the checkpoint is corrupt
            return
        shapes = lambda tree: sorted(tuple(x.shape) for x in jax.tree.leaves(tree))
        if saved is not None and shapes(saved) != shapes(abstract):
            theirs, ours = set(shapes(saved)), set(shapes(abstract))
            raise ValueError(
                f"checkpoint {step} in {self.workdir}/checkpoints holds another model or optimizer state "
                f"(arrays of shapes {sorted(theirs - ours)[:3]} there, {sorted(ours - theirs)[:3]} here); "
                f"use the config it was written with or a new --workdir"
            )

    def _set_aside(self, step: int, error: Exception) -> None:
        path = os.path.join(self.workdir, "checkpoints", str(step))
        aside = os.path.join(self.workdir, "corrupt_checkpoints", str(step))
        message = f"checkpoint {path} is unreadable ({type(error).__name__}: {str(error)[:200]}); "
        if jax.process_index() == 0:
            os.makedirs(os.path.dirname(aside), exist_ok=True)
            if os.path.exists(aside):
                shutil.rmtree(aside)
            shutil.move(path, aside)
        warnings.warn(message + f"moved it to {aside} and fell back to the previous checkpoint", stacklevel=3)
        self.manager.reload()

    def maybe_save(self, step: int, state, data: dict, *, force: bool = False) -> bool:
        """Saves at multiples of every_steps (or when forced); returns whether it saved.

        Called after every step, it first raises the failure of a save still in flight or finished
        since (CheckpointWriteError): a full disk stops the run at the next step, not an interval later.
        """
        self.check()
        if not force and step % self.every_steps:
            return False
        if step == self.latest_step():
            return False
        self._in_flight = step
        with self._failures():
            return self.manager.save(step, args=_save_args(state, data), force=True)

    def check(self) -> None:
        """Raises CheckpointWriteError when a background save has failed (a cheap, non-blocking look)."""
        with self._failures():
            for manager in (self.manager, self.best):
                if manager is None:
                    continue
                manager.check_for_errors()  # the commit threads
                # The finalize thread (Orbax keeps it private): a failure there is only raised by
                # the next save or wait; when it has ended with one, that wait returns at once.
                finalize = getattr(manager, "_finalize_thread", None)
                failed = lambda t: t is not None and not t.is_alive() and t.exception is not None
                if finalize is not None and finalize.map(failed):
                    manager.wait_until_finished()

    def _failures(self):
        return _WriteFailures(self)

    def write_error(self, error: BaseException) -> CheckpointWriteError:
        """`error` (from Orbax or the file system) as one line: the path, the cause, what is kept."""
        directory = os.path.join(self.workdir, "checkpoints")
        path = getattr(error, "filename", None) or os.path.join(directory, str(self._in_flight))
        # The save that failed may be an earlier one than the last handed over: the path says which.
        named = re.search(rf"{re.escape(self.workdir)}/(?:checkpoints|best)/(\d+)", f"{path} {error}")
        step = int(named.group(1)) if named else self._in_flight
        text = f"{error} {error.__cause__ or ''}"
        known = re.search(
            r"No space left on device|Permission denied|Read-only file system|quota exceeded", text
        )
        first_line = (str(error).strip().splitlines() or [""])[0]
        cause = getattr(error, "strerror", None) or (known.group(0) if known else first_line[:200])
        if not getattr(error, "filename", None):  # the storage layer names the file it was writing
            written = re.search(r'local file "([^"]+)"', text)
            path = written.group(1) if written else path
        complete = (
            sorted(int(n) for n in os.listdir(directory) if n.isdigit()) if os.path.isdir(directory) else []
        )
        kept = (
            f"the latest complete one is step {complete[-1]}" if complete else "no earlier checkpoint exists"
        )
        return CheckpointWriteError(
            f"could not write the checkpoint of step {step} ({type(error).__name__}: {cause}: "
            f"{path}); the earlier checkpoints are untouched ({kept}); free space or fix the permissions "
            "and rerun to resume"
        )

    def save_if_best(self, step: int, state, data: dict, metrics: dict[str, float]) -> None:
        """Offers an evaluated state to the best-k set (Orbax keeps the k lowest metrics)."""
        if self.best is not None and step != self.best.latest_step():
            with self._failures():
                self.best.save(step, args=_save_args(state, data), metrics=dict(metrics), force=True)

    def wait(self) -> None:
        with self._failures():
            self.manager.wait_until_finished()
            if self.best is not None:
                self.best.wait_until_finished()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self.manager.close()
            if self.best is not None:
                self.best.close()


class _WriteFailures:
    """Turns any exception of Orbax's save machinery into the Checkpointer's one-line error."""

    def __init__(self, checkpointer: Checkpointer):
        self.checkpointer = checkpointer

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if error is None or isinstance(error, (CheckpointWriteError, KeyboardInterrupt)):
            return False
        if not isinstance(error, Exception):
            return False
        raise self.checkpointer.write_error(error) from error


def load_latest(workdir: str, subdir: str = "checkpoints") -> dict:
    """The latest checkpoint of a run (WORKDIR/checkpoints, or "best" for the best one) as plain
    arrays: {"step", "params", "batch_stats", "opt_state", "rng", "ema_params"}."""
    directory = os.path.join(os.path.abspath(workdir), subdir)
    manager = _manager(directory, keep=1_000_000, create=False)
    step = manager.latest_step()
    if step is None:
        raise FileNotFoundError(f"no checkpoint in {directory}")
    return manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore())).state


def load_best(workdir: str, best_metric: str = "eval/top1_error") -> dict:
    """The checkpoint with the lowest `best_metric` among WORKDIR/best (kept by checkpoint.keep_best)."""
    directory = os.path.join(os.path.abspath(workdir), "best")
    manager = _manager(directory, keep=1_000_000, best_metric=best_metric, create=False)
    step = manager.best_step()
    if step is None:
        raise FileNotFoundError(f"no best checkpoint in {directory} (set config.checkpoint.keep_best > 0)")
    return manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore())).state


def restore_weights(
    workdir: str, target: dict, *, best: bool = False, best_metric: str = "eval/top1_error"
) -> tuple[int, dict]:
    """Reads only `target`'s fields of a run's saved state (the optimizer state stays on disk).

    Args:
      workdir: the run's directory.
      target: {field: tree of jax.ShapeDtypeStruct with shardings} for some TrainState fields
        (e.g. params, batch_stats, ema_params); empty fields are returned empty, unread.
      best: the best checkpoint (WORKDIR/best, lowest `best_metric`) instead of the latest.
      best_metric: the metric the best checkpoints were ranked by (config.checkpoint.best_metric).

    Returns:
      (step, the restored fields in `target`'s structure and shardings). Unreadable checkpoints are
      skipped with a warning, newest first, and left where they are.

    Raises:
      ValueError: when the checkpoint holds other arrays than `target` (another model or config).
      FileNotFoundError: when the directory holds no readable checkpoint.
    """
    directory = os.path.join(os.path.abspath(workdir), "best" if best else "checkpoints")
    options = ocp.CheckpointManagerOptions(
        create=False, best_fn=(lambda metrics: metrics[best_metric]) if best else None, best_mode="min"
    )
    # The state was written by StandardCheckpointHandler, which stores a PyTree in the format of
    # PyTreeCheckpointHandler; the latter can read a subset of it (partial_restore).
    handlers = {"state": ocp.PyTreeCheckpointHandler(), "data": ocp.JsonCheckpointHandler()}
    manager = ocp.CheckpointManager(directory, options=options, item_handlers=handlers)
    wanted = {k: v for k, v in target.items() if jax.tree.leaves(v)}
    args = ocp.args.PyTreeRestore(
        item=wanted, restore_args=ocp.checkpoint_utils.construct_restore_args(wanted), partial_restore=True
    )
    steps = [manager.best_step()] if best else sorted(manager.all_steps(), reverse=True)
    try:
        for step in (s for s in steps if s is not None):
            try:
                saved = manager.item_metadata(step)["state"]
                _check_same_arrays(getattr(saved, "tree", saved), wanted, f"{directory}/{step}")
                restored = manager.restore(step, args=ocp.args.Composite(state=args)).state
            except ValueError:
                raise
            except Exception as e:  # noqa: BLE001 - unreadable: go back one, leave it for the trainer
                message = f"checkpoint {directory}/{step} is unreadable ({type(e).__name__}: {str(e)[:200]})"
                warnings.warn(message + "; evaluating the previous one", stacklevel=2)
                continue
            return step, {k: restored[k] if k in wanted else v for k, v in target.items()}
    finally:
        manager.close()
    raise FileNotFoundError(f"no readable checkpoint in {directory}")


def _check_same_arrays(saved, wanted: dict, where: str) -> None:
    """Partial restores leave a wanted array that the checkpoint lacks unread, silently: every
    wanted array must be there, with its shape, or the checkpoint belongs to another config."""
    leaves = jax.tree_util.tree_leaves_with_path
    path_shapes = lambda tree: {jax.tree_util.keystr(p): tuple(leaf.shape) for p, leaf in leaves(tree)}
    theirs = path_shapes({k: saved[k] for k in wanted if k in saved})
    ours = path_shapes(wanted)
    differ = sorted(p for p in ours if theirs.get(p) != ours[p])
    if differ:
        shown = ", ".join(f"{p}: {theirs.get(p, 'missing')} there, {ours[p]} here" for p in differ[:3])
        raise ValueError(
            f"checkpoint {where} holds another model ({len(differ)} arrays differ; {shown}); evaluate "
            f"with the config it was trained with"
        )
