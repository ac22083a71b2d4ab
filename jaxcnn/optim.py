"""Config -> optax: the learning-rate schedule and the optimizer (weight decay masked to kernels)."""

from __future__ import annotations

import jax
import optax

from jaxcnn.durations import Durations

OPTIMIZERS = ("sgd",)
SCHEDULES = ("constant", "cosine", "step")


def check_config(config) -> None:
    """Checks config.optimizer and config.schedule: one ValueError naming the bad value."""
    opt, sched = config.optimizer, config.schedule
    if opt.name not in OPTIMIZERS:
        raise ValueError(f"config.optimizer.name={opt.name!r}; known: {', '.join(OPTIMIZERS)}")
    for key in ("base_learning_rate", "reference_batch_size"):
        value = opt[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ValueError(f"config.optimizer.{key} must be a positive number, got {value!r}")
    if opt.weight_decay < 0:
        raise ValueError(f"config.optimizer.weight_decay must be >= 0, got {opt.weight_decay!r}")
    if sched.name not in SCHEDULES:
        raise ValueError(f"config.schedule.name={sched.name!r}; known: {', '.join(SCHEDULES)}")


def learning_rate(config) -> float:
    """The peak learning rate: the linear scaling rule lr = base_lr * batch_size / reference_batch."""
    opt = config.optimizer
    return opt.base_learning_rate * config.batch_size / opt.reference_batch_size


def create_schedule(config, durations: Durations) -> optax.Schedule:
    """Builds config.schedule: linear warm-up, then constant, cosine to 0, or step decay.

    `step` divides the rate by 1 / decay_factor at each epoch in `boundaries_epochs`, the
    "divide by 10" of AlexNet, VGG and ResNet with the plateaus fixed in advance. The epochs come
    resolved into steps (jaxcnn.durations).
    """
    check_config(config)
    peak, sched = learning_rate(config), config.schedule
    warmup = durations.warmup_steps
    if sched.name == "constant":
        main = optax.constant_schedule(peak)
    elif sched.name == "cosine":
        main = optax.cosine_decay_schedule(peak, max(1, durations.num_train_steps - warmup))
    else:  # "step"
        bounds = {step - warmup: sched.decay_factor for step in durations.boundaries_steps}
        main = optax.piecewise_constant_schedule(peak, bounds)
    if warmup == 0:
        return main
    return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), main], [warmup])


def create_optimizer(config, schedule: optax.Schedule) -> optax.GradientTransformation:
    """SGD with momentum and L2 weight decay added to the gradient (the papers' formulation).

    With config.optimizer.grad_clip_norm > 0 the gradient is first clipped to that global norm.

    Weight decay applies to kernels only (parameters with ndim > 1) unless
    config.optimizer.decay_all is set: biases, BatchNorm scales and LeNet's subsampling
    coefficients are not decayed.
    """
    check_config(config)
    opt = config.optimizer
    mask = None if opt.decay_all else (lambda params: jax.tree.map(lambda p: p.ndim > 1, params))
    clip = [optax.clip_by_global_norm(opt.grad_clip_norm)] if opt.grad_clip_norm else []
    return optax.chain(
        *clip,
        optax.add_decayed_weights(opt.weight_decay, mask=mask),
        optax.sgd(schedule, momentum=opt.momentum or None, nesterov=opt.nesterov),
    )
