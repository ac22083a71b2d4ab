"""Evaluation: the papers' test protocols, top-1 / top-5 error over a whole split, padded batches masked.

A protocol (center, ten_crop, multi_scale, crops144; see jaxcnn.data.views) turns each test image
into views; the network scores every view and the softmax outputs are averaged over the views (AlexNet
Sec. 6, VGG Sec. 3.2, GoogLeNet Sec. 10) before top-k. Views larger than the network's training crop
(multi-scale) run the network fully convolutionally, its score map averaged by the model itself.

The command line evaluates a run's checkpoint with any protocol and writes WORKDIR/eval_results.json:

    python -m jaxcnn.evaluate --config=configs/X.py --workdir=DIR --protocols=center,ten_crop
"""

from __future__ import annotations

import contextlib
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
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            json.dump(results, f, indent=2, sort_keys=True)
        os.replace(tmp, path)  # atomic: a kill or a full disk leaves the previous results whole
    finally:
        if os.path.isfile(tmp):
            os.remove(tmp)
    return path


def main(argv):
    from absl import flags

    from jaxcnn import run_dir
    from jaxcnn.train import evaluate_checkpoint

    del argv
    FLAGS = flags.FLAGS
    protocols = [p for p in FLAGS.protocols.split(",") if p] or list(FLAGS.config.eval.protocols)
    try:
        # The run's own lock (jaxcnn/run_dir.py), held by process 0: no training or other evaluation
        # writes meanwhile.
        is_writer = jax.process_index() == 0
        lock = run_dir.WorkdirLock(FLAGS.workdir, "evaluation", read_only=True) if is_writer else None
        with lock or contextlib.nullcontext():
            step, metrics = evaluate_checkpoint(FLAGS.config, FLAGS.workdir, protocols, FLAGS.checkpoint)
            for protocol in protocols:  # printed first: an unwritable workdir costs no numbers
                print(f"step {step}: {describe(metrics, protocol)}", flush=True)
            if is_writer:
                try:
                    print(f"written to {write_results(FLAGS.workdir, step, metrics)}")
                except OSError as e:
                    raise SystemExit(
                        f"error: could not write the results above to {FLAGS.workdir}/eval_results.json "
                        f"({e.strerror or e})"
                    ) from None
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"error: {e}") from None


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from absl import app, flags
    from ml_collections import config_flags

    flags.DEFINE_string("workdir", None, "The run's directory (its checkpoints/ and best/).")
    flags.DEFINE_string("protocols", "", "Comma-separated: center, ten_crop, multi_scale, crops144.")
    flags.DEFINE_string("checkpoint", "latest", "latest (WORKDIR/checkpoints) or best (WORKDIR/best).")
    config_flags.DEFINE_config_file("config", None, "The run's experiment config (configs/*.py).")
    flags.mark_flags_as_required(["config", "workdir"])
    app.run(main)
