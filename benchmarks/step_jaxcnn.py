"""jaxcnn's own train step: jaxcnn.build, then train.train_step jitted and donated as the trainer does."""

from __future__ import annotations

import jax
import numpy as np

from benchmarks.step_common import LEARNING_RATE, TrainStep, check_precision, synthetic_batch
from configs.base import base_config
from jaxcnn import build as build_lib
from jaxcnn import registry, sharding, train


def benchmark_config(model: str, batch_size: int, image_size: int = 0, precision: str = "float32"):
    """An ImageNet-style recipe for `model`: SGD (LEARNING_RATE, momentum 0.9), weight decay 1e-4."""
    info = registry.model_info(model)
    config = base_config()
    config.model.name = model
    config.input.image_size = image_size or info.input_size[0]
    config.batch_size = batch_size
    config.num_train_steps = 1_000_000
    config.eval_every_steps = config.checkpoint_every_steps = config.num_train_steps  # never, here
    config.precision = precision
    config.optimizer.base_learning_rate = LEARNING_RATE
    config.optimizer.reference_batch_size = batch_size  # the same rate at every batch
    config.optimizer.weight_decay = 1e-4
    config.schedule.name = "constant"
    return config


def build(model: str, batch_size: int, image_size: int = 0, precision: str = "float32") -> TrainStep:
    """The train step users run: jaxcnn.build's state, then train_step under jit with the state donated.

    image_size: side of the square input; 0 = the model's native resolution.
    precision: "float32", or "bfloat16" compute (parameters and optimizer state stay float32).
    """
    check_precision(precision)
    info = registry.model_info(model)
    config = benchmark_config(model, batch_size, image_size, precision)
    input_shape = (config.input.image_size, config.input.image_size, info.input_size[-1])
    mesh = sharding.create_mesh()
    built = build_lib.build(
        config,
        num_classes=info.num_classes,
        image_shape=input_shape,
        num_train_examples=batch_size,  # one synthetic batch is the whole "epoch"
        mesh=mesh,
    )
    step_fn = train.jit_train_step(built.model, built.tx, config, mesh, built.state)
    images, labels = synthetic_batch(batch_size, input_shape, info.num_classes)
    batch = sharding.shard_batch({"image": images, "label": labels}, mesh)
    holder = {"state": built.state, "metrics": None}

    def step() -> None:
        holder["state"], holder["metrics"] = step_fn(holder["state"], batch)

    def sync() -> float:
        jax.block_until_ready(holder["state"])
        return float(holder["metrics"]["loss"])

    num_params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(built.state.params))
    return TrainStep(step=step, sync=sync, num_params=num_params, input_shape=input_shape)
