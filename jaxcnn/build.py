"""One build path: config + dataset facts + mesh -> model, optimizer, schedule and the sharded state.

The trainer, the evaluator, the benchmarks and the tests all build through `build()` (or, for a
restore that needs only the weights, through `create_model` and `abstract_weights`), so there is one
sequence to read and to change:

    from jaxcnn import build, sharding

    built = build.build(config, num_classes=10, image_shape=(32, 32, 1), num_train_examples=60_000,
                        mesh=sharding.create_mesh())
    built.model, built.tx, built.schedule, built.state, built.durations.num_train_steps
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from jaxcnn import checkpoint, durations, finetune, losses, optim, registry, sharding, tasks
from jaxcnn.data import input as input_lib

PRECISIONS = ("float32", "bfloat16")
REMAT_POLICIES = ("none", "convs")


def check_config(config) -> None:
    """Checks every section of a config, each by the module that consumes it, before anything is
    opened or compiled: one ValueError naming the bad value and what is allowed."""
    registry.model_info(config.model.name)  # names the known models
    # --- the task seam: config.task picks the data checks (and, below, the split) -----------------
    tasks.check_task(config)  # a known task, and a model of that task
    if tasks.task_of(config) == "segmentation":
        from jaxcnn.data import segmentation as seg_data

        seg_data.check_config(config)
    else:
        input_lib.check_config(config, jax.process_count())
    losses.check_config(config.loss)
    optim.check_config(config)
    sharding.check_config(config)
    durations.check_config(config)
    checkpoint.check_config(config.checkpoint)
    finetune.check_config(config)
    if config.precision not in PRECISIONS:
        raise ValueError(f"config.precision={config.precision!r}; allowed: {', '.join(PRECISIONS)}")
    if config.remat not in REMAT_POLICIES:
        raise ValueError(f"config.remat={config.remat!r}; allowed: {', '.join(REMAT_POLICIES)}")
    if not 0.0 <= config.ema_decay < 1.0:
        raise ValueError(f"config.ema_decay must be in [0, 1), got {config.ema_decay!r}")


@flax.struct.dataclass
class TrainState:
    """Everything a step changes, and the RNG key: step s draws from fold_in(rng, s)."""

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any
    rng: jax.Array  # raw uint32 key data of PRNGKey(config.seed)
    ema_params: Any  # {} unless config.ema_decay > 0


@dataclasses.dataclass(frozen=True)
class Built:
    """What `build` returns.

    Attributes:
      model: the flax module (config.model, in config.precision).
      tx: the optax optimizer (config.optimizer, weight decay masks) driven by `schedule`.
      schedule: step -> learning rate.
      state: the freshly initialised TrainState, already in its shardings over the mesh.
      durations: every step count of the run (steps per epoch, total, log/eval/checkpoint
        intervals), resolved once from the actual batch size (jaxcnn.durations.resolve).
    """

    model: nn.Module
    tx: optax.GradientTransformation
    schedule: optax.Schedule
    state: TrainState
    durations: durations.Durations


def build(
    config, *, num_classes: int, image_shape: tuple[int, int, int], num_train_examples: int, mesh
) -> Built:
    """The model, optimizer, schedule and initial sharded state of `config`.

    Args:
      config: an experiment config (configs/*.py).
      num_classes: classes of the dataset (the classifier's outputs).
      image_shape: (height, width, channels) of one training input.
      num_train_examples: size of the training split (sets the steps per epoch and total steps).
      mesh: the device mesh the state is sharded over (sharding.create_mesh).

    Returns:
      A Built.
    """
    # The run's durations, in one call (the schedule and the trainer's loop both read them).
    steps = durations.resolve(config, num_train_examples)
    model = create_model(config, num_classes)
    schedule = optim.create_schedule(config, steps)
    tx = optim.create_optimizer(config, schedule)
    # config.init (jaxcnn/finetune.py): a frozen or slower backbone, and the initial weights loaded.
    tx = finetune.wrap_optimizer(config, tx, model, tuple(image_shape))
    state = init_state(model, tx, config, mesh, tuple(image_shape))
    state = finetune.initialize(config, model, tx, state, tuple(image_shape))
    return Built(model, tx, schedule, state, steps)


def open_split(config, split_name: str):
    """The config's split, by its task: a classification Split or a segmentation SegSplit (both carry
    split, num_examples, num_classes and channels, what the trainer reads)."""
    if tasks.task_of(config) == "segmentation":
        from jaxcnn.data import segmentation as seg_data

        return seg_data.open_split(config, split_name)
    return input_lib.split_from_config(config, split_name)


def create_model(config, num_classes: int):
    """The config's model: config.model.name plus any other config.model keys as overrides."""
    overrides = {k: v for k, v in config.model.items() if k != "name"}
    overrides.update(finetune.model_overrides(config))  # a frozen backbone's BatchNorm
    if config.precision == "bfloat16":
        overrides["dtype"] = jnp.bfloat16  # parameters stay float32 (flax's param_dtype)
    return registry.create_model(config.model.name, num_classes=num_classes, **overrides)


def _init_variables(model, image_shape, rng) -> dict:
    dummy = jnp.zeros((1, *image_shape), jnp.float32)
    return model.init({"params": rng, "dropout": rng}, dummy, train=False)


def init_state(model, tx, config, mesh, image_shape) -> TrainState:
    """Initialises the state directly in its shardings over the mesh (nothing on one host first)."""

    def init(rng):
        variables = _init_variables(model, image_shape, rng)
        params = variables["params"]
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            batch_stats=variables.get("batch_stats", {}),
            opt_state=tx.init(params),
            rng=rng,
            ema_params=jax.tree.map(jnp.copy, params) if config.ema_decay else {},
        )

    rng = jax.random.PRNGKey(config.seed)
    shapes = jax.eval_shape(init, rng)  # shape errors surface here, before anything is allocated
    return jax.jit(init, out_shardings=state_sharding(shapes, mesh))(rng)


def abstract_weights(model, config, mesh, image_shape) -> dict:
    """Shapes, dtypes and shardings of the state's weights alone, nothing allocated.

    Returns {"params", "batch_stats", "ema_params"} of jax.ShapeDtypeStruct (the last two {} when
    the model keeps no statistics or config.ema_decay is 0): what an evaluation restores from a
    checkpoint, without an optimizer state to build or read.
    """
    variables = jax.eval_shape(lambda rng: _init_variables(model, image_shape, rng), jax.random.PRNGKey(0))
    weights = {
        "params": variables["params"],
        "batch_stats": variables.get("batch_stats", {}),
        "ema_params": variables["params"] if config.ema_decay else {},
    }
    shardings = state_sharding(weights, mesh)
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), weights, shardings)


def state_sharding(state, mesh):
    """Parameters and their optimizer/EMA mirrors by the mesh's rules; scalars and keys replicated."""
    return sharding.param_sharding(state, mesh)


def variables_of(params, batch_stats) -> dict:
    """The flax variables dict of a model's weights (no "batch_stats" collection when it has none)."""
    return {"params": params, "batch_stats": batch_stats} if batch_stats else {"params": params}
