"""Training criteria: cross-entropy and LeNet-5's MAP criterion (eq. 9)."""

import re

import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxcnn.losses import check_config, classification_loss


def _cfg(name, j=0.0):
    return ml_collections.ConfigDict({"name": name, "map_j": j, "label_smoothing": 0.0})


def test_cross_entropy_is_optax():
    logits, labels = jnp.array([[1.0, 2.0, 0.5]]), jnp.array([1])
    expected = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    np.testing.assert_allclose(classification_loss(logits, labels, _cfg("softmax_cross_entropy")), expected)


def test_lecun_map_matches_equation_9():
    distances = jnp.array([[3.0, 10.0, 7.0], [50.0, 40.0, 45.0]])  # y_i
    labels, j = jnp.array([0, 1]), 2.0
    loss = classification_loss(-distances, labels, _cfg("lecun_map", j))
    for n in range(2):
        y = np.asarray(distances[n])
        expected = y[labels[n]] + np.log(np.exp(-j) + np.exp(-y).sum())
        assert float(loss[n]) == pytest.approx(expected, rel=1e-6)
    # Far from every centre, the criterion is the distance to the right one (less j).
    assert float(loss[1]) == pytest.approx(40.0 - j, rel=1e-4)


def test_unknown_loss_is_named():
    with pytest.raises(ValueError, match="config.loss.name='hinge'; known: softmax_cross_entropy, lecun_map"):
        classification_loss(jnp.zeros((1, 2)), jnp.array([0]), _cfg("hinge"))


@pytest.mark.parametrize(
    "name,smoothing,message",
    [
        ("softmax_cross_entropy", 1.0, "config.loss.label_smoothing must be in [0, 1), got 1.0"),
        ("lecun_map", 0.1, "config.loss.label_smoothing needs softmax_cross_entropy, not 'lecun_map'"),
    ],
)
def test_bad_loss_section_is_one_line(name, smoothing, message):
    config = _cfg(name)
    config.label_smoothing = smoothing
    with pytest.raises(ValueError, match=re.escape(message)):
        check_config(config)
