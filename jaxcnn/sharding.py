"""Device mesh, shardings and multi-host start: data parallelism over every device of every process,
optional model (tensor) parallelism.

The mesh has two axes, "data" (the batch is split over it) and "model" (large kernels are split over
their output features on it). With model_parallel=1 (the default) this is plain data parallelism.
"""

from __future__ import annotations

import math
import os
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
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
    multi_slurm = int(env.get("SLURM_NTASKS", "1")) > 1
    multi_tpu = env.get("TPU_WORKER_HOSTNAMES", "localhost") not in ("", "localhost")
    if env.get("JAX_COORDINATOR_ADDRESS") or multi_slurm or multi_tpu:
        jax.distributed.initialize()
        return True
    return False


def create_mesh(model_parallel: int = 1) -> Mesh:
    """A ("data", "model") mesh of shape (device_count // model_parallel, model_parallel).

    Spans the devices of all processes; jax.make_mesh orders them along the physical topology
    (e.g. TPU rings), so the "model" axis gets the closest neighbours. The axes are Auto: XLA
    propagates shardings from the arguments and the model's constraints.

    Args:
      model_parallel: devices per model replica (the "model" axis size); must divide the device count.

    Returns:
      The mesh.
    """
    count = jax.device_count()
    data_axis_size(model_parallel)
    return jax.make_mesh(
        (count // model_parallel, model_parallel), (DATA_AXIS, MODEL_AXIS), axis_types=(AxisType.Auto,) * 2
    )


def data_axis_size(model_parallel: int) -> int:
    """The "data" axis size for a "model" axis of `model_parallel` devices (checked: it divides them)."""
    count = jax.device_count()
    if isinstance(model_parallel, bool) or not isinstance(model_parallel, int) or model_parallel < 1:
        raise ValueError(f"config.mesh.model (model_parallel) must be a positive int, got {model_parallel!r}")
    if count % model_parallel:
        divisors = [d for d in range(1, count + 1) if count % d == 0]
        raise ValueError(
            f"config.mesh.model (model_parallel)={model_parallel} does not divide the {count} devices; "
            f"use one of {divisors}"
        )
    return count // model_parallel


def check_config(config) -> None:
    """Checks that config.mesh fits the devices and the batches divide over its data axis."""
    data = data_axis_size(config.mesh.model)
    for key in ("batch_size", "eval_batch_size", "grad_accum_steps"):
        if isinstance(config[key], bool) or not isinstance(config[key], int) or config[key] <= 0:
            raise ValueError(f"config.{key} must be a positive number, got {config[key]!r}")
    for key in ("batch_size", "eval_batch_size"):
        if config[key] % data:
            raise ValueError(
                f"config.{key}={config[key]} does not divide over the {data} devices of the data axis "
                f"({jax.device_count()} devices / mesh.model {config.mesh.model}); use a multiple of {data}"
            )
    k = config.grad_accum_steps
    if config.batch_size % (k * data):
        raise ValueError(
            f"config.batch_size={config.batch_size} does not split into grad_accum_steps={k} "
            f"micro-batches over {data} devices; use a multiple of {k * data}"
        )


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over the data axis (replicated over the model axis)."""
    return NamedSharding(mesh, P(DATA_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """A copy of the whole array on every device."""
    return NamedSharding(mesh, P())


def param_sharding(tree: Any, mesh: Mesh, min_size: int = 2**18) -> Any:
    """Shardings for a tree of parameters, or of anything shaped like them (a TrainState).

    The rule looks only at each array's shape, so it treats parameters and the optimizer's traces
    of them (momentum, which share their shapes) alike, and scalars such as the step are kept
    whole: an array with ndim >= 2 (a Dense or conv kernel) and at least `min_size` elements whose
    last (output-feature) dim divides over the "model" axis is split along that dim; everything
    else (biases, BatchNorm statistics, small kernels) is replicated. With a "model" axis of size 1
    everything is replicated.

    Args:
      tree: a pytree of arrays or jax.ShapeDtypeStruct (e.g. jax.eval_shape of an init function).
      mesh: a mesh from create_mesh.
      min_size: the smallest kernel worth splitting (elements).

    Returns:
      A pytree of NamedSharding with the structure of `tree`.
    """
    model = mesh.shape.get(MODEL_AXIS, 1)

    def spec(leaf) -> NamedSharding:
        shape = np.shape(leaf)
        split = model > 1 and len(shape) >= 2 and math.prod(shape) >= min_size and shape[-1] % model == 0
        return NamedSharding(mesh, P(*(None,) * (len(shape) - 1), MODEL_AXIS) if split else P())

    return jax.tree.map(spec, tree)


def one_step_at_a_time_on_cpu(step_fn, mesh: Mesh):
    """`step_fn`, made to wait for its results when the mesh holds several CPU devices of this process.

    XLA:CPU launches each device's share of a multi-device program on a shared pool with one thread
    per device, and a launch that holds a collective keeps its thread until every device has joined.
    When the host dispatches step N+1 before all of step N's launches have started, step N+1's
    launches can take the threads that step N's last launches need, and they wait on those devices'
    step N: a deadlock (8 fake devices on 2 cores, LeNet-5: 8 of 8 runs hung under load, 1 of 2 idle).
    Waiting for each step's results before dispatching the next rules that out. Accelerators, and
    one CPU device, keep asynchronous dispatch.
    """
    here = jax.process_index()
    local_cpus = [d for d in mesh.devices.flat if d.platform == "cpu" and d.process_index == here]
    if len(local_cpus) < 2:
        return step_fn

    def step_and_wait(*args, **kwargs):
        return jax.block_until_ready(step_fn(*args, **kwargs))

    return step_and_wait


def shard_batch(batch, mesh: Mesh):
    """Assembles each process's slice of every array of the global batch (a dict, possibly holding
    tuples of view groups) into one global jax.Array split over the data axis."""
    sharding = batch_sharding(mesh)
    return jax.tree.map(lambda v: jax.make_array_from_process_local_data(sharding, v), batch)
