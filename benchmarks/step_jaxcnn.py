"""jaxcnn's own train step (jaxcnn.train.train_step, jitted and donated as train_and_evaluate does)."""

from __future__ import annotations

import jax
import numpy as np

from benchmarks.step_common import LEARNING_RATE, TrainStep, synthetic_batch
from jaxcnn import config_lib, optim, registry, sharding, train


def benchmark_config(model: str, batch_size: int, image_size: int = 0):
    """An ImageNet-style recipe for `model`: SGD (LEARNING_RATE, momentum 0.9), weight decay 1e-4."""
    info = registry.model_info(model)
    config = config_lib.base_config()
    config.model.name = model
    config.input.image_size = image_size or info.input_size[0]
    config.batch_size = batch_size
    config.num_train_steps = 1_000_000
    config.optimizer.base_learning_rate = LEARNING_RATE
    config.optimizer.reference_batch_size = batch_size  # the same rate at every batch
    config.optimizer.weight_decay = 1e-4
    config.schedule.name = "constant"
    return config


def build(model: str, batch_size: int, image_size: int = 0) -> TrainStep:
    """The train step users run: train.init_state, then train_step under jit with the state donated.

    image_size: side of the square input; 0 = the model's native resolution.
    """
    info = registry.model_info(model)
    config = benchmark_config(model, batch_size, image_size)
    input_shape = (config.input.image_size, config.input.image_size, info.input_size[-1])
    mesh = sharding.create_mesh()
    net = train.create_model(config, info.num_classes)
    schedule = optim.create_schedule(config, steps_per_epoch=1, num_train_steps=config.num_train_steps)
    tx = optim.create_optimizer(config, schedule)
    state = train.init_state(net, tx, config, mesh, input_shape)
    step_fn = train.jit_train_step(net, tx, config, mesh, state)
    images, labels = synthetic_batch(batch_size, input_shape, info.num_classes)
    batch = sharding.shard_batch({"image": images, "label": labels}, mesh)
    holder = {"state": state}

    def run() -> float:
        holder["state"], metrics = step_fn(holder["state"], batch)
        return float(metrics["loss"])  # the host sync: the step has finished

    num_params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(state.params))
    return TrainStep(run=run, num_params=num_params, input_shape=input_shape)
