"""Config checks at the boundary and the one place where durations become step counts."""

from __future__ import annotations

import jax

from jaxcnn import optim, registry
from jaxcnn.data import input as input_lib


def validate(config) -> None:
    """Raises ValueError naming the first bad value and what is allowed; cheap, before compiling."""

    def positive(key, value, kind=(int,)):
        if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
            raise ValueError(f"config.{key} must be a positive number, got {value!r}")

    registry.model_info(config.model.name)  # raises with the list of known models
    if config.dataset.name not in input_lib.SUPPORTED:
        raise ValueError(
            f"config.dataset.name={config.dataset.name!r} is not supported; "
            f"supported: {', '.join(input_lib.SUPPORTED)}"
        )
    if config.input.normalize not in input_lib.NORMALIZATIONS:
        raise ValueError(
            f"config.input.normalize={config.input.normalize!r}; allowed: {input_lib.NORMALIZATIONS}"
        )
    for key in ("batch_size", "eval_batch_size"):
        positive(key, config[key])
        devices = jax.device_count()
        if config[key] % devices:
            raise ValueError(
                f"config.{key}={config[key]} does not divide over {devices} devices; "
                f"use a multiple of {devices}"
            )
    for key in ("eval_every_steps", "checkpoint_every_steps", "log_every_steps"):
        positive(key, config[key])
    if not isinstance(config.num_train_steps, int) or isinstance(config.num_train_steps, bool):
        raise ValueError(f"config.num_train_steps must be an int, got {config.num_train_steps!r}")
    if config.num_train_steps <= 0:
        positive("num_epochs", config.num_epochs, (int, float))
    positive("optimizer.base_learning_rate", config.optimizer.base_learning_rate, (int, float))
    if config.optimizer.name not in optim.OPTIMIZERS:
        raise ValueError(
            f"config.optimizer.name={config.optimizer.name!r}; known: {optim.OPTIMIZERS}"
        )
    if config.schedule.name not in optim.SCHEDULES:
        raise ValueError(f"config.schedule.name={config.schedule.name!r}; known: {optim.SCHEDULES}")
    if config.optimizer.weight_decay < 0:
        raise ValueError(
            f"config.optimizer.weight_decay must be >= 0, got {config.optimizer.weight_decay!r}"
        )


def num_train_steps(config, num_train_examples: int) -> tuple[int, int]:
    """Returns (steps_per_epoch, total steps): config.num_train_steps if > 0, else epochs."""
    steps_per_epoch = num_train_examples // config.batch_size
    if steps_per_epoch == 0:
        raise ValueError(
            f"config.batch_size={config.batch_size} exceeds the {num_train_examples} training examples"
        )
    if config.num_train_steps > 0:
        return steps_per_epoch, config.num_train_steps
    return steps_per_epoch, int(round(config.num_epochs * steps_per_epoch))
