"""Evaluation: top-1 / top-5 error over a whole split, padded batches masked out."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax


def topk_correct(logits: jax.Array, labels: jax.Array, k: int) -> jax.Array:
    """1.0 where the label is among the k highest logits (k clipped to the number of classes)."""
    k = min(k, logits.shape[-1])
    _, top = jax.lax.top_k(logits, k)
    return jnp.any(top == labels[:, None], axis=-1).astype(jnp.float32)


def eval_step(model, variables, batch) -> dict[str, jax.Array]:
    """Sums over the real (mask = 1) examples of one batch: loss, top-1 and top-5 hits, count."""
    logits = model.apply(variables, batch["image"], train=False).astype(jnp.float32)
    mask = batch["mask"]
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"])
    return {
        "loss": jnp.sum(loss * mask),
        "top1": jnp.sum(topk_correct(logits, batch["label"], 1) * mask),
        "top5": jnp.sum(topk_correct(logits, batch["label"], 5) * mask),
        "count": jnp.sum(mask),
    }


def summarize(sums: dict[str, float]) -> dict[str, float]:
    """Turns summed eval counts into the logged metrics (errors as fractions)."""
    n = sums["count"]
    return {
        "eval/loss": sums["loss"] / n,
        "eval/top1_error": 1.0 - sums["top1"] / n,
        "eval/top5_error": 1.0 - sums["top5"] / n,
        "eval/num_examples": n,
    }
