"""Training criteria, chosen by config.loss.name."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

LOSSES = ("softmax_cross_entropy", "lecun_map")


def check_config(loss_config) -> None:
    """Checks config.loss: one ValueError naming the bad value and what is allowed."""
    if loss_config.name not in LOSSES:
        raise ValueError(f"config.loss.name={loss_config.name!r}; known: {', '.join(LOSSES)}")
    smoothing = loss_config.label_smoothing
    if not 0.0 <= smoothing < 1.0:
        raise ValueError(f"config.loss.label_smoothing must be in [0, 1), got {smoothing!r}")
    if smoothing and loss_config.name != "softmax_cross_entropy":
        raise ValueError(f"config.loss.label_smoothing needs softmax_cross_entropy, not {loss_config.name!r}")


def classification_loss(logits: jax.Array, labels: jax.Array, loss_config) -> jax.Array:
    """Per-example loss.

    softmax_cross_entropy: -sum_i q_i log softmax(logits)_i, with q the one-hot label smoothed by
      loss_config.label_smoothing = e: q = (1 - e) one_hot + e / K (Szegedy et al. 2016, Sec. 7).
    lecun_map: the MAP criterion of LeCun et al. 1998 (Sec. II-C, eq. 9) for RBF outputs, whose
      logits are minus the squared distances y_i: E = y_label + log(exp(-j) + sum_i exp(-y_i)).
      The constant "rubbish class" term exp(-j) keeps pulling the output towards its centre after
      the example is classified right, which plain cross-entropy stops doing.
    """
    check_config(loss_config)  # at trace time: costs nothing per step
    logits = logits.astype(jnp.float32)
    if loss_config.name == "softmax_cross_entropy":
        if not loss_config.label_smoothing:
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels)
        one_hot = jax.nn.one_hot(labels, logits.shape[-1], dtype=logits.dtype)
        return optax.softmax_cross_entropy(logits, optax.smooth_labels(one_hot, loss_config.label_smoothing))
    rubbish = jnp.full(logits.shape[:-1] + (1,), -loss_config.map_j, logits.dtype)  # lecun_map
    total = jax.nn.logsumexp(jnp.concatenate([logits, rubbish], axis=-1), axis=-1)
    return total - jnp.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]
