"""Evaluation: the papers' test protocols, top-1 / top-5 error over a whole split, padded batches masked.

A protocol (center, ten_crop, multi_scale, crops144; see jaxcnn.data.views) turns each test image
into views; the network scores every view and the softmax outputs are averaged over the views (AlexNet
Sec. 6, VGG Sec. 3.2, GoogLeNet Sec. 10) before top-k. Views larger than the network's training crop
(multi-scale) run the network fully convolutionally, its score map averaged by the model itself.

The command line evaluates a run's checkpoint with any protocol and writes WORKDIR/eval_results.json:

    python -m jaxcnn.evaluate --config=configs/X.py --workdir=DIR --protocols=center,ten_crop
"""

from __future__ import annotations

import json
import os

import jax
import jax.numpy as jnp


def topk_correct(logits: jax.Array, labels: jax.Array, k: int) -> jax.Array:
    """1.0 where the label is among the k highest scores (k clipped to the number of classes)."""
    k = min(k, logits.shape[-1])
    _, top = jax.lax.top_k(logits, k)
    return jnp.any(top == labels[:, None], axis=-1).astype(jnp.float32)


def view_probabilities(model, variables, views) -> jax.Array:
    """The softmax averaged over every view: views is a tuple of (B, V_k, H_k, W_k, C) groups."""
    total, count = 0.0, 0
    for group in views:
        batch, num_views = group.shape[:2]
        logits = model.apply(variables, group.reshape(batch * num_views, *group.shape[2:]), train=False)
        probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).reshape(batch, num_views, -1)
        total, count = total + probs.sum(axis=1), count + num_views
    return total / count


def eval_step(model, variables, batch) -> dict[str, jax.Array]:
    """Sums over the real (mask = 1) examples of one batch: loss, top-1 and top-5 hits, count."""
    probs = view_probabilities(model, variables, batch["views"])
    mask, labels = batch["mask"], batch["label"]
    loss = -jnp.log(jnp.take_along_axis(probs, labels[:, None], axis=-1)[:, 0] + 1e-12)
    return {
        "loss": jnp.sum(loss * mask),
        "top1": jnp.sum(topk_correct(probs, labels, 1) * mask),
        "top5": jnp.sum(topk_correct(probs, labels, 5) * mask),
        "count": jnp.sum(mask),
    }


def summarize(sums: dict[str, float], prefix: str = "eval") -> dict[str, float]:
    """Turns summed eval counts into the logged metrics (errors as fractions) under `prefix`/."""
    n = sums["count"]
    return {
        f"{prefix}/loss": sums["loss"] / n,
        f"{prefix}/top1_error": 1.0 - sums["top1"] / n,
        f"{prefix}/top5_error": 1.0 - sums["top5"] / n,
        f"{prefix}/num_examples": n,
    }


def metric_prefix(protocol: str, ema: bool = False) -> str:
    """Where a protocol's metrics are logged: eval/ for the center crop, eval_<protocol>/ otherwise."""
    name = "eval" if protocol == "center" else f"eval_{protocol}"
    return name.replace("eval", "eval_ema", 1) if ema else name


def describe(metrics: dict[str, float], protocol: str) -> str:
    """One line for people: "center top-1 error 23.85%, top-5 7.13% (50000 examples)"."""
    prefix = metric_prefix(protocol)
    return (
        f"{protocol} top-1 error {100 * metrics[f'{prefix}/top1_error']:.2f}%, "
        f"top-5 {100 * metrics[f'{prefix}/top5_error']:.2f}% "
        f"({int(metrics[f'{prefix}/num_examples'])} examples)"
    )


def write_results(workdir: str, step: int, metrics: dict[str, float]) -> str:
    """Merges `metrics` (at checkpoint `step`) into WORKDIR/eval_results.json; returns its path."""
    path = os.path.join(workdir, "eval_results.json")
    results = {}
    if os.path.exists(path):
        with open(path) as f:
            results = json.load(f)
    results.setdefault(str(step), {}).update(metrics)
    with open(path + ".tmp", "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)
    return path


def main(argv, config):
    from absl import flags

    from jaxcnn.train import evaluate_checkpoint

    del argv
    FLAGS = flags.FLAGS
    protocols = [p for p in FLAGS.protocols.split(",") if p] or list(config.eval.protocols)
    try:
        step, metrics = evaluate_checkpoint(config, FLAGS.workdir, protocols, FLAGS.checkpoint)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}") from None
    path = write_results(FLAGS.workdir, step, metrics) if jax.process_index() == 0 else None
    for protocol in protocols:
        print(f"step {step}: {describe(metrics, protocol)}")
    if path:
        print(f"written to {path}")


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import functools
    import sys

    from absl import app, flags

    from jaxcnn import config_lib

    flags.DEFINE_string("workdir", None, "The run's directory (its checkpoints/ and best/).")
    flags.DEFINE_string("protocols", "", "Comma-separated: center, ten_crop, multi_scale, crops144.")
    flags.DEFINE_string("checkpoint", "latest", "latest (WORKDIR/checkpoints) or best (WORKDIR/best).")
    flags.mark_flags_as_required(["workdir"])
    config, argv = config_lib.config_or_exit(sys.argv)  # --config=configs/X.py and --config.KEY=VALUE
    app.run(functools.partial(main, config=config), argv=argv)
