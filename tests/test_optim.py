"""Schedules, the linear scaling rule, weight-decay masking and gradient clipping."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import optim
from jaxcnn.config_lib import base_config


def _config(**schedule):
    c = base_config()
    c.batch_size, c.optimizer.base_learning_rate, c.optimizer.reference_batch_size = 512, 0.1, 256
    c.schedule.update(schedule)
    return c


def test_linear_scaling_rule():
    assert optim.learning_rate(_config()) == pytest.approx(0.2)


def test_step_schedule_divides_by_ten_at_the_boundaries():
    sched = optim.create_schedule(_config(name="step", boundaries_epochs=(30, 60)), 100, 9000)
    assert [float(sched(s)) for s in (0, 2999, 3000, 5999, 6000)] == pytest.approx(
        [0.2, 0.2, 0.02, 0.02, 0.002]
    )


def test_cosine_with_warmup():
    sched = optim.create_schedule(_config(name="cosine", warmup_epochs=1.0), 10, 110)
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
        tx = optim.create_optimizer(c, optim.create_schedule(c, 1, 1))
        updates, _ = tx.update(zero, tx.init(params), params)
        assert float(updates["kernel"][0, 0]) == pytest.approx(-0.2 * 0.5)
        assert (float(updates["bias"][0]) != 0.0) == bias_moves


def test_gradient_clipping_bounds_the_update():
    c = _config(name="constant")
    c.optimizer.momentum, c.optimizer.grad_clip_norm = 0.0, 1.0
    tx = optim.create_optimizer(c, optim.create_schedule(c, 1, 1))
    params = {"w": jnp.zeros((4,))}
    updates, _ = tx.update({"w": jnp.full((4,), 100.0)}, tx.init(params), params)
    np.testing.assert_allclose(np.linalg.norm(updates["w"]), 0.2, rtol=1e-5)


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        optim.create_schedule(_config(name="linear"), 1, 1)
