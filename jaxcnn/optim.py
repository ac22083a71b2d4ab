"""Config -> optax: the learning-rate schedule and the optimizer (weight decay masked to kernels)."""

from __future__ import annotations

import jax
import optax

OPTIMIZERS = ("sgd",)
SCHEDULES = ("constant", "cosine", "step")


def learning_rate(config) -> float:
    """The peak learning rate: the linear scaling rule lr = base_lr * batch_size / reference_batch."""
    opt = config.optimizer
    return opt.base_learning_rate * config.batch_size / opt.reference_batch_size


def create_schedule(config, steps_per_epoch: int, num_train_steps: int) -> optax.Schedule:
    """Builds config.schedule: linear warm-up, then constant, cosine to 0, or step decay.

    `step` divides the rate by 1 / decay_factor at each epoch in `boundaries_epochs`, the
    "divide by 10" of AlexNet, VGG and ResNet with the plateaus fixed in advance.
    """
    peak, sched = learning_rate(config), config.schedule
    warmup = int(sched.warmup_epochs * steps_per_epoch)
    if sched.name == "constant":
        main = optax.constant_schedule(peak)
    elif sched.name == "cosine":
        main = optax.cosine_decay_schedule(peak, max(1, num_train_steps - warmup))
    elif sched.name == "step":
        bounds = {int(e * steps_per_epoch) - warmup: sched.decay_factor for e in sched.boundaries_epochs}
        main = optax.piecewise_constant_schedule(peak, bounds)
    else:
        raise ValueError(f"unknown schedule {sched.name!r}; known: {SCHEDULES}")
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
    opt = config.optimizer
    if opt.name != "sgd":
        raise ValueError(f"unknown optimizer {opt.name!r}; known: {OPTIMIZERS}")
    mask = None if opt.decay_all else (lambda params: jax.tree.map(lambda p: p.ndim > 1, params))
    clip = [optax.clip_by_global_norm(opt.grad_clip_norm)] if opt.grad_clip_norm else []
    return optax.chain(
        *clip,
        optax.add_decayed_weights(opt.weight_decay, mask=mask),
        optax.sgd(schedule, momentum=opt.momentum or None, nesterov=opt.nesterov),
    )
