"""Schedules, the linear scaling rule, weight-decay masking and gradient clipping."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.base import base_config
from jaxcnn import optim
from jaxcnn.durations import Durations


def _config(**schedule):
    c = base_config()
    c.batch_size, c.optimizer.base_learning_rate, c.optimizer.reference_batch_size = 512, 0.1, 256
    c.schedule.update(schedule)
    return c


def _steps(steps_per_epoch, total, config=None):
    """Durations of `total` steps, the schedule's epochs in steps (as durations.resolve gives them)."""
    sched = (config or _config()).schedule
    return Durations(
        steps_per_epoch=steps_per_epoch,
        num_train_steps=total,
        log_every=1,
        eval_every=1,
        checkpoint_every=1,
        warmup_steps=int(sched.warmup_epochs * steps_per_epoch),
        boundaries_steps=tuple(int(e * steps_per_epoch) for e in sched.boundaries_epochs),
    )


def test_linear_scaling_rule():
    assert optim.learning_rate(_config()) == pytest.approx(0.2)


def test_step_schedule_divides_by_ten_at_the_boundaries():
    c = _config(name="step", boundaries_epochs=(30, 60))
    sched = optim.create_schedule(c, _steps(100, 9000, c))
    assert [float(sched(s)) for s in (0, 2999, 3000, 5999, 6000)] == pytest.approx(
        [0.2, 0.2, 0.02, 0.02, 0.002]
    )


def test_cosine_with_warmup():
    c = _config(name="cosine", warmup_epochs=1.0)
    sched = optim.create_schedule(c, _steps(10, 110, c))
    assert float(sched(0)) == 0.0
    assert float(sched(5)) == pytest.approx(0.1)
    assert float(sched(10)) == pytest.approx(0.2)
    assert float(sched(110)) == pytest.approx(0.0, abs=1e-7)


def test_weight_decay_skips_biases_unless_decay_all():
    params = {"kernel": jnp.ones((2, 2)), "bias": jnp.ones((2,))}
    zero = jax.tree.map(jnp.zeros_like, params)
    for decay_all, bias_moves in ((False, False), (True, True)):
        c = _config(name="constant")
        c.optimizer.weight_decay, c.optimizer.decay_all, c.optimizer.momentum = 0.5, decay_all, 0.0
        tx = optim.create_optimizer(c, optim.create_schedule(c, _steps(1, 1)))
        updates, _ = tx.update(zero, tx.init(params), params)
        assert float(updates["kernel"][0, 0]) == pytest.approx(-0.2 * 0.5)
        assert (float(updates["bias"][0]) != 0.0) == bias_moves


def test_gradient_clipping_bounds_the_update():
    c = _config(name="constant")
    c.optimizer.momentum, c.optimizer.grad_clip_norm = 0.0, 1.0
    tx = optim.create_optimizer(c, optim.create_schedule(c, _steps(1, 1)))
    params = {"w": jnp.zeros((4,))}
    updates, _ = tx.update({"w": jnp.full((4,), 100.0)}, tx.init(params), params)
    np.testing.assert_allclose(np.linalg.norm(updates["w"]), 0.2, rtol=1e-5)


BAD = [
    ({"schedule.name": "linear"}, "config.schedule.name='linear'; known: constant, cosine, step, expon"),
    ({"optimizer.name": "adamw"}, "config.optimizer.name='adamw'; known: sgd, rmsprop"),
    ({"optimizer.base_learning_rate": 0.0}, "config.optimizer.base_learning_rate must be a positive number"),
    ({"optimizer.reference_batch_size": 0}, "config.optimizer.reference_batch_size must be a positive"),
    ({"optimizer.weight_decay": -1e-4}, "config.optimizer.weight_decay must be >= 0, got -0.0001"),
]


@pytest.mark.parametrize("override,message", BAD, ids=[str(b[0]) for b in BAD])
def test_bad_sections_are_named_before_anything_is_built(override, message):
    c = _config()
    c.update_from_flattened_dict(override)
    with pytest.raises(ValueError, match=re.escape(message)):
        optim.check_config(c)
    with pytest.raises(ValueError, match=re.escape(message)):  # the builders check too
        optim.create_optimizer(c, optim.create_schedule(c, _steps(1, 1)))


def _plateau_config(**schedule):
    return _config(name="plateau", **schedule)


def _feed(config, values):
    """The optimizer state's plateau rule after evaluations scoring `values`; returns the scales."""
    tx = optim.create_optimizer(config, optim.create_schedule(config, _steps(1, 1)))
    opt_state, scales = tx.init({"w": jnp.zeros((2, 2))}), []
    for value in values:
        opt_state = optim.after_evaluation(config, opt_state, {"eval/top1_error": value})
        scales.append(optim.rate_scale(opt_state))
    return scales, optim.plateau_state(opt_state)


def test_plateau_lowers_the_rate_after_patience_evaluations_without_improvement():
    c = _plateau_config(patience=2, max_reductions=3, decay_factor=0.1)
    scales, state = _feed(c, [0.9, 0.8, 0.8, 0.85, 0.7, 0.71, 0.72])
    # 0.8 repeated and 0.85: two evaluations without improvement -> x0.1; 0.7 improves; two more -> x0.1.
    assert scales == pytest.approx([1, 1, 1, 0.1, 0.1, 0.1, 0.01])
    assert int(state.reductions) == 2 and float(state.best) == pytest.approx(0.7)


def test_plateau_stops_after_max_reductions_and_min_delta_counts_small_gains_as_none():
    c = _plateau_config(patience=1, max_reductions=2, min_delta=0.05)
    scales, state = _feed(c, [0.9, 0.88, 0.87, 0.86, 0.5])
    assert scales == pytest.approx([1, 0.1, 0.01, 0.01, 0.01])  # gains under 0.05 are no improvement
    assert int(state.reductions) == 2


def test_plateau_scales_the_update_like_a_lower_rate():
    c = _plateau_config(patience=1)
    c.optimizer.momentum = 0.9
    tx = optim.create_optimizer(c, optim.create_schedule(c, _steps(1, 1)))
    params, grads = {"w": jnp.zeros((3,))}, {"w": jnp.ones((3,))}
    opt_state = tx.init(params)
    for value in (0.5, 0.5):  # the second does not improve: scale 0.1
        opt_state = optim.after_evaluation(c, opt_state, {"eval/top1_error": value})
    updates, _ = tx.update(grads, opt_state, params)
    np.testing.assert_allclose(updates["w"], -0.2 * 0.1, rtol=1e-6)


def test_other_schedules_have_no_plateau_state():
    c = _config(name="step", boundaries_epochs=(1,))
    tx = optim.create_optimizer(c, optim.create_schedule(c, _steps(1, 1)))
    opt_state = tx.init({"w": jnp.zeros((2,))})
    assert optim.plateau_state(opt_state) is None and optim.rate_scale(opt_state) == 1.0
    assert optim.after_evaluation(c, opt_state, {"eval/top1_error": 0.1}) is opt_state


def test_exponential_decays_by_the_factor_every_n_epochs_as_a_staircase():
    c = _config(name="exponential", decay_factor=0.94, decay_every_epochs=2.0)
    sched = optim.create_schedule(c, _steps(10, 100, c))
    assert [float(sched(s)) for s in (0, 19, 20, 39, 40)] == pytest.approx(
        [0.2, 0.2, 0.2 * 0.94, 0.2 * 0.94, 0.2 * 0.94**2]
    )


def test_rmsprop_uses_the_configured_decay_and_epsilon():
    c = _config(name="constant")
    c.optimizer.name, c.optimizer.momentum = "rmsprop", 0.0
    c.optimizer.rms_decay, c.optimizer.rms_eps = 0.9, 1.0
    tx = optim.create_optimizer(c, optim.create_schedule(c, _steps(1, 1)))
    params = {"w": jnp.zeros((2,))}
    updates, _ = tx.update({"w": jnp.full((2,), 3.0)}, tx.init(params), params)
    # nu = 0.1 * 9 = 0.9; update = -lr * g / sqrt(nu + eps) (optax adds eps inside the root).
    np.testing.assert_allclose(updates["w"], -0.2 * 3.0 / np.sqrt(0.9 + 1.0), rtol=1e-5)


PLATEAU_BAD = [
    ({"schedule.patience": 0}, "config.schedule.patience must be an int >= 1, got 0"),
    ({"schedule.max_reductions": -1}, "config.schedule.max_reductions must be an int >= 0, got -1"),
    ({"schedule.min_delta": -0.1}, "config.schedule.min_delta must be >= 0, got -0.1"),
    ({"schedule.plateau_metric": "train/loss"}, "config.schedule.plateau_metric='train/loss'; allowed: "),
]


@pytest.mark.parametrize("override,message", PLATEAU_BAD, ids=[str(b[0]) for b in PLATEAU_BAD])
def test_bad_plateau_keys_are_named(override, message):
    c = _plateau_config()
    c.update_from_flattened_dict(override)
    with pytest.raises(ValueError, match=re.escape(message)):
        optim.check_config(c)
