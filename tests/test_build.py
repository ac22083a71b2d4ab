"""jaxcnn.build: the durations, model, optimizer and sharded state of a config, from the dataset's facts."""

import jax
import jax.numpy as jnp
import pytest
from helpers import ROOT

from jaxcnn import build, config_lib, sharding


def _config(**overrides):
    config = config_lib.load_config(str(ROOT / "configs" / "mnist_convnet.py"))
    config.model.name, config.batch_size, config.input.image_size = "lenet5_modern", 8, 32
    config.update_from_flattened_dict(overrides)
    return config


def _build(config, examples=80):
    mesh = sharding.create_mesh(config.mesh.model)
    return build.build(config, num_classes=7, image_shape=(32, 32, 1), num_train_examples=examples, mesh=mesh)


def test_durations_come_from_the_training_examples_and_the_batch():
    built = _build(_config(num_epochs=3), examples=85)  # 85 // 8 = 10 full batches per epoch
    assert (built.durations.steps_per_epoch, built.durations.num_train_steps) == (10, 30)
    built = _build(_config(num_train_steps=12))
    assert (built.durations.steps_per_epoch, built.durations.num_train_steps) == (10, 12)
    with pytest.raises(ValueError, match="batch_size=8 exceeds the 5 training examples"):
        _build(_config(), examples=5)


def test_the_state_starts_at_step_zero_in_its_shardings():
    config = _config(ema_decay=0.9)
    built = _build(config)
    state = built.state
    assert int(state.step) == 0
    logits = built.model.apply(build.variables_of(state.params, state.batch_stats), jnp.zeros((2, 32, 32, 1)))
    assert logits.shape == (2, 7)  # num_classes
    assert float(built.schedule(0)) == pytest.approx(config.optimizer.base_learning_rate * 8 / 64)
    mesh = sharding.create_mesh()
    expected = build.state_sharding(state, mesh)
    assert jax.tree.map(lambda x: x.sharding, state) == expected
    assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), state.ema_params, state.params))
    # What the evaluator restores: the same shapes and shardings, nothing allocated.
    weights = build.abstract_weights(built.model, config, mesh, (32, 32, 1))
    assert jax.tree.map(lambda a: (a.shape, a.sharding), weights["params"]) == jax.tree.map(
        lambda a: (a.shape, a.sharding), state.params
    )
    assert isinstance(jax.tree.leaves(weights["ema_params"])[0], jax.ShapeDtypeStruct)
