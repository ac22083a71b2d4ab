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
    ({"schedule.name": "linear"}, "config.schedule.name='linear'; known: constant, cosine, step"),
    ({"optimizer.name": "adamw"}, "config.optimizer.name='adamw'; known: sgd"),
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
