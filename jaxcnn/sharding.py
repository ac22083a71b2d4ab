"""Device mesh, shardings and multi-host initialisation."""

from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"
MODEL_AXIS = "model"


def initialize_distributed(
    coordinator_address: str = "", num_processes: int = 0, process_id: int = -1
) -> bool:
    """Starts jax.distributed when the run spans several processes; returns whether it did.

    An explicit coordinator (config.distributed) wins; otherwise JAX detects the cluster from the
    environment (Cloud TPU VMs, SLURM, or JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES /
    JAX_PROCESS_ID). A single process on one machine needs none of this and starts nothing.
    """
    if coordinator_address:
        jax.distributed.initialize(
            coordinator_address=coordinator_address,
            num_processes=num_processes or None,
            process_id=None if process_id < 0 else process_id,
        )
        return True
    env = os.environ
    if env.get("JAX_COORDINATOR_ADDRESS") or "SLURM_NTASKS" in env and int(env["SLURM_NTASKS"]) > 1:
        jax.distributed.initialize()
        return True
    if env.get("TPU_WORKER_HOSTNAMES", "localhost") not in ("", "localhost"):  # a multi-host TPU slice
        jax.distributed.initialize()
        return True
    return False


def create_mesh(model_parallel: int = 1) -> Mesh:
    """A ("data", "model") mesh over all devices of all processes; "model" has `model_parallel`."""
    devices = jax.devices()
    if model_parallel < 1 or len(devices) % model_parallel:
        raise ValueError(f"model_parallel={model_parallel} does not divide the {len(devices)} devices")
    grid = np.asarray(devices).reshape(len(devices) // model_parallel, model_parallel)
    return Mesh(grid, (DATA_AXIS, MODEL_AXIS))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over the data axis."""
    return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def param_sharding(tree, mesh: Mesh, min_size: int = 2**18):
    """Shardings for a tree of arrays (or ShapeDtypeStructs) over `mesh`: replicated for now."""
    del min_size
    return jax.tree.map(lambda _: replicated(mesh), tree)


def shard_batch(batch: dict[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Assembles each process's slice of the global batch into one global, sharded jax.Array."""
    sharding = batch_sharding(mesh)
    return jax.tree.map(lambda v: jax.make_array_from_process_local_data(sharding, v), batch)
