"""A thin layer over orbax.checkpoint.CheckpointManager: save every N steps, restore the latest."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import orbax.checkpoint as ocp


class Checkpointer:
    """Saves the train state under WORKDIR/checkpoints/<step>, asynchronously, keeping the last `keep`.

    Orbax writes each step to a temporary directory and renames it when complete, so a process
    killed mid-save leaves the previous checkpoint as the latest.
    """

    def __init__(self, workdir: str, every_steps: int, keep: int):
        self.every_steps = every_steps
        self.manager = ocp.CheckpointManager(
            os.path.join(os.path.abspath(workdir), "checkpoints"),
            options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True),
        )

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def restore(self, state):
        """Returns the latest checkpoint restored onto `state`'s shapes and shardings (or `state`)."""
        step = self.latest_step()
        if step is None:
            return state
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state)
        return self.manager.restore(step, args=ocp.args.StandardRestore(abstract))

    def maybe_save(self, step: int, state, *, force: bool = False) -> bool:
        """Saves at multiples of every_steps (or when forced); returns whether it saved."""
        if not force and step % self.every_steps:
            return False
        if step == self.latest_step():
            return False
        # The train step donates the state's buffers, and the save finishes in the background: hand
        # Orbax a copy, or the next step may overwrite (or free) what is still being written.
        snapshot = jax.tree.map(jnp.copy, state)
        return self.manager.save(step, args=ocp.args.StandardSave(snapshot), force=True)

    def close(self) -> None:
        self.manager.wait_until_finished()
        self.manager.close()


def load_latest(workdir: str) -> dict:
    """The latest checkpoint of a run as a plain pytree of arrays ({"params": ..., "step": ...})."""
    manager = ocp.CheckpointManager(os.path.join(os.path.abspath(workdir), "checkpoints"))
    step = manager.latest_step()
    if step is None:
        raise FileNotFoundError(f"no checkpoint in {workdir}/checkpoints")
    return manager.restore(step, args=ocp.args.StandardRestore())
