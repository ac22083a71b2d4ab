"""A thin layer over orbax.checkpoint.CheckpointManager: the last N, the best k, safe restores.

Each checkpoint WORKDIR/checkpoints/<step>/ holds two items: `state` (the TrainState: parameters,
BatchNorm statistics, optimizer state, step and the RNG key) and `data` (a small JSON record of the
input pipeline's position: epoch, example offset, batch size, seed). Orbax writes each step into a
temporary directory and renames it when complete, so a process killed mid-save leaves the previous
checkpoint as the latest; a checkpoint that is complete on disk but unreadable (a truncated file, a
disk error) is moved to WORKDIR/corrupt_checkpoints/ with a warning, and the previous one is used.
"""

from __future__ import annotations

import os
import shutil
import warnings

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp


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
        """Saves at multiples of every_steps (or when forced); returns whether it saved."""
        if not force and step % self.every_steps:
            return False
        if step == self.latest_step():
            return False
        return self.manager.save(step, args=_save_args(state, data), force=True)

    def save_if_best(self, step: int, state, data: dict, metrics: dict[str, float]) -> None:
        """Offers an evaluated state to the best-k set (Orbax keeps the k lowest metrics)."""
        if self.best is not None and step != self.best.latest_step():
            self.best.save(step, args=_save_args(state, data), metrics=dict(metrics), force=True)

    def wait(self) -> None:
        self.manager.wait_until_finished()
        if self.best is not None:
            self.best.wait_until_finished()

    def close(self) -> None:
        self.wait()
        self.manager.close()
        if self.best is not None:
            self.best.close()


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
