"""Config -> optax: the learning-rate schedule and the optimizer (weight decay masked to kernels).

The "plateau" schedule (AlexNet Sec. 5, VGG Sec. 3.1, ResNet Sec. 3.4: divide the rate by 10 when
the validation error stops improving) is not a function of the step: the optimizer's last transform
multiplies the update by a scale kept in its state (PlateauState), and the trainer feeds each
held-out evaluation to `after_evaluation`, which lowers that scale. The state lives in the
optimizer state, so it is checkpointed with the TrainState and a resume continues it exactly.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxcnn.durations import Durations

OPTIMIZERS = ("sgd", "rmsprop")
SCHEDULES = ("constant", "cosine", "step", "exponential", "plateau")
PLATEAU_METRICS = ("eval/top1_error", "eval/top5_error", "eval/loss")


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
    if not 0.0 < sched.decay_factor <= 1.0:
        raise ValueError(f"config.schedule.decay_factor must be in (0, 1], got {sched.decay_factor!r}")
    if sched.name == "exponential" and not sched.decay_every_epochs > 0:
        raise ValueError(
            "config.schedule.decay_every_epochs must be > 0 for 'exponential', "
            f"got {sched.decay_every_epochs!r}"
        )
    if sched.name == "plateau":
        for key in ("patience", "max_reductions"):
            value, least = sched[key], int(key == "patience")
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"config.schedule.{key} must be an int >= {least}, got {value!r}")
        if sched.min_delta < 0:
            raise ValueError(f"config.schedule.min_delta must be >= 0, got {sched.min_delta!r}")
        if sched.plateau_metric not in PLATEAU_METRICS:
            raise ValueError(
                f"config.schedule.plateau_metric={sched.plateau_metric!r}; "
                f"allowed: {', '.join(PLATEAU_METRICS)}"
            )
    if opt.name == "rmsprop" and not (0.0 <= opt.rms_decay < 1.0 and opt.rms_eps > 0):
        raise ValueError(
            "config.optimizer.rms_decay must be in [0, 1) and rms_eps > 0, "
            f"got {opt.rms_decay!r}, {opt.rms_eps!r}"
        )


def learning_rate(config) -> float:
    """The peak learning rate: the linear scaling rule lr = base_lr * batch_size / reference_batch."""
    opt = config.optimizer
    return opt.base_learning_rate * config.batch_size / opt.reference_batch_size


def create_schedule(config, durations: Durations) -> optax.Schedule:
    """Builds config.schedule: linear warm-up, then constant, cosine to 0, step or exponential decay.

    `step` divides the rate by 1 / decay_factor at each epoch in `boundaries_epochs`, the
    "divide by 10" of AlexNet, VGG and ResNet with the plateaus fixed in advance. `exponential`
    multiplies it by decay_factor every `decay_every_epochs` (a staircase: GoogLeNet's 4% every 8
    epochs, Inception v3's 0.94 every 2). `plateau` is constant here: its reductions are a scale in
    the optimizer state (PlateauState), applied by the optimizer, not by this function. The epochs
    come resolved into steps (jaxcnn.durations).
    """
    check_config(config)
    peak, sched = learning_rate(config), config.schedule
    warmup = durations.warmup_steps
    if sched.name in ("constant", "plateau"):
        main = optax.constant_schedule(peak)
    elif sched.name == "cosine":
        main = optax.cosine_decay_schedule(peak, max(1, durations.num_train_steps - warmup))
    elif sched.name == "exponential":
        every = max(1, round(sched.decay_every_epochs * durations.steps_per_epoch))
        main = optax.exponential_decay(peak, every, sched.decay_factor, staircase=True)
    else:  # "step"
        bounds = {step - warmup: sched.decay_factor for step in durations.boundaries_steps}
        main = optax.piecewise_constant_schedule(peak, bounds)
    if warmup == 0:
        return main
    return optax.join_schedules([optax.linear_schedule(0.0, peak, warmup), main], [warmup])


def create_optimizer(config, schedule: optax.Schedule) -> optax.GradientTransformation:
    """SGD with momentum (or RMSProp) and L2 weight decay added to the gradient (the papers' formulation).

    RMSProp is Inception v3's (Sec. 8): decay `rms_decay`, epsilon `rms_eps`, with momentum.

    With config.optimizer.grad_clip_norm > 0 the gradient is first clipped to that global norm.

    Weight decay applies to kernels only (parameters with ndim > 1) unless
    config.optimizer.decay_all is set: biases, BatchNorm scales and LeNet's subsampling
    coefficients are not decayed.
    """
    check_config(config)
    opt = config.optimizer
    mask = None if opt.decay_all else (lambda params: jax.tree.map(lambda p: p.ndim > 1, params))
    clip = [optax.clip_by_global_norm(opt.grad_clip_norm)] if opt.grad_clip_norm else []
    if opt.name == "rmsprop":
        momentum = opt.momentum or None
        step = optax.rmsprop(
            schedule, decay=opt.rms_decay, eps=opt.rms_eps, momentum=momentum, nesterov=opt.nesterov
        )
    else:
        step = optax.sgd(schedule, momentum=opt.momentum or None, nesterov=opt.nesterov)
    plateau = [scale_by_plateau()] if config.schedule.name == "plateau" else []
    return optax.chain(*clip, optax.add_decayed_weights(opt.weight_decay, mask=mask), step, *plateau)


def scale_groups(tx, labels, multipliers: dict[str, float]) -> optax.GradientTransformation:
    """`tx` with each parameter group's updates multiplied by its multiplier (its rate scaled).

    `labels`: params -> a tree of group names (optax.multi_transform's). A multiplier of 0 freezes
    its group (optax.set_to_zero: no step, no weight decay, no optimizer state kept for it).
    """

    def scaled(m):
        if m == 0:
            return optax.set_to_zero()
        return tx if m == 1 else optax.chain(tx, optax.scale(m))

    return optax.multi_transform({group: scaled(m) for group, m in multipliers.items()}, labels)


class PlateauState(NamedTuple):
    """The reduce-on-plateau rule's state: the current rate multiplier, the best evaluation so far,
    the evaluations since it improved and the reductions made (all scalars, checkpointed)."""

    scale: jax.Array
    best: jax.Array
    bad_evaluations: jax.Array
    reductions: jax.Array


def scale_by_plateau() -> optax.GradientTransformation:
    """Multiplies the update by PlateauState.scale; the train step never changes the state, only
    `after_evaluation` does. Placed after the optimizer, so the rate is scaled, not the gradient
    fed to the momentum (SGD's trace, RMSProp's averages): the same as lowering the rate."""

    def init(params):
        del params
        return PlateauState(
            scale=jnp.ones((), jnp.float32),
            best=jnp.full((), jnp.inf, jnp.float32),
            bad_evaluations=jnp.zeros((), jnp.int32),
            reductions=jnp.zeros((), jnp.int32),
        )

    def update(updates, state, params=None):
        del params
        return jax.tree.map(lambda u: u * state.scale.astype(u.dtype), updates), state

    return optax.GradientTransformation(init, update)


def _is_plateau(node) -> bool:
    return isinstance(node, PlateauState)


def plateau_state(opt_state) -> PlateauState | None:
    """The PlateauState inside an optimizer state, or None (another schedule)."""
    found = [s for s in jax.tree.leaves(opt_state, is_leaf=_is_plateau) if _is_plateau(s)]
    return found[0] if found else None


def next_plateau_state(state: PlateauState, value: float, schedule_config) -> PlateauState:
    """The rule after one evaluation scoring `value` (lower is better): an improvement of more than
    min_delta resets the count; `patience` evaluations in a row without one multiply the scale by
    decay_factor (at most max_reductions times) and restart the count."""
    value = float(jnp.float32(value))  # compared as stored: a repeated value is no improvement
    improved = value < float(state.best) - schedule_config.min_delta
    best = min(value, float(state.best))
    bad = 0 if improved else int(state.bad_evaluations) + 1
    scale, reductions = float(state.scale), int(state.reductions)
    if bad >= schedule_config.patience:
        bad = 0
        if reductions < schedule_config.max_reductions:
            scale, reductions = scale * schedule_config.decay_factor, reductions + 1
    # Same dtypes and shardings as before: the jitted train step takes the state unchanged otherwise.
    new = (scale, best, bad, reductions)
    placed = (jax.device_put(jnp.asarray(v, old.dtype), old.sharding) for v, old in zip(new, state))
    return PlateauState(*placed)


def after_evaluation(config, opt_state, metrics: dict):
    """The optimizer state after an evaluation: the plateau rule fed config.schedule.plateau_metric
    (the same opt_state when the schedule is not "plateau")."""
    if config.schedule.name != "plateau":
        return opt_state
    value = float(metrics[config.schedule.plateau_metric])
    return jax.tree.map(
        lambda s: next_plateau_state(s, value, config.schedule) if _is_plateau(s) else s,
        opt_state,
        is_leaf=_is_plateau,
    )


def rate_scale(opt_state) -> float:
    """The plateau rule's current multiplier of the schedule's rate (1.0 for other schedules)."""
    state = plateau_state(opt_state)
    return 1.0 if state is None else float(state.scale)
