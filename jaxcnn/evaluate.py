"""Evaluation: the papers' test protocols, top-1 / top-5 error over a whole split, padded batches masked.

A protocol (center, ten_crop, multi_scale, crops144; see jaxcnn.data.views) turns each test image
into views; the network scores every view and the softmax outputs are averaged over the views (AlexNet
Sec. 6, VGG Sec. 3.2, GoogLeNet Sec. 10) before top-k. Views larger than the network's training crop
(multi-scale) run the network fully convolutionally, its score map averaged by the model itself.

The command line evaluates a run's checkpoint with any protocol and writes WORKDIR/eval_results.json:

    python -m jaxcnn.evaluate --config=configs/X.py --workdir=DIR --protocols=center,ten_crop

and pretrained weights (jaxcnn.list_pretrained) with their own preprocessing, printing the results:

    python -m jaxcnn.evaluate --config=configs/resnet50_imagenet.py --weights=IMAGENET1K_V2 [--path=FILE]
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
from typing import Any

import jax
import jax.numpy as jnp

from jaxcnn import build, checkpoint, segmentation, sharding
from jaxcnn.data import input as input_lib
from jaxcnn.data import views
from jaxcnn.tasks import (
    EvaluationAbandoned,  # raised here; the trainer catches it as evaluate.EvaluationAbandoned
)


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
    if f"{prefix}/mean_iou" in metrics:  # a segmentation run's metrics
        return segmentation.describe(metrics, prefix)
    return (
        f"{protocol} top-1 error {100 * metrics[f'{prefix}/top1_error']:.2f}%, "
        f"top-5 {100 * metrics[f'{prefix}/top5_error']:.2f}% "
        f"({int(metrics[f'{prefix}/num_examples'])} examples)"
    )


def write_results(workdir: str, step: int, metrics: dict[str, float]) -> str:
    """Merges `metrics` (at checkpoint `step`) into WORKDIR/eval_results.json; returns its path.

    Keys measured under a config that differs from the run's (evaluate's --config.input.image_size=...)
    carry the difference (`eval/top1_error@input.image_size=256`), so they never replace the run's own.
    """
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


def run_eval(
    eval_fn, params, batch_stats, split, config, mesh, protocol: str, prefix: str, stop=None
) -> dict[str, float]:
    """Evaluates `params` on the whole split with one protocol; sums stay on device until the end.

    `stop`, when given, is asked before each batch; True abandons the evaluation (EvaluationAbandoned):
    a preemption notice gives seconds, a multi-crop evaluation takes minutes.
    """
    totals = None
    for batch in input_lib.eval_batches(
        split, config, protocol=protocol, process_index=jax.process_index(), process_count=jax.process_count()
    ):
        if stop is not None and stop():
            raise EvaluationAbandoned(f"{protocol} evaluation abandoned")
        sums = eval_fn(params, batch_stats, sharding.shard_batch(batch, mesh))
        totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
    return summarize({k: float(v) for k, v in jax.device_get(totals).items()}, prefix)


def evaluate_state(model, state, split, config, mesh, protocols, stop=None) -> dict[str, float]:
    """Every protocol on the state's weights (and on their EMA when kept), each under its own name.

    `state` is anything with params, batch_stats and ema_params: a TrainState, or the weights that
    evaluate_checkpoint restores. `stop`: see run_eval.
    """
    eval_fn = jax.jit(lambda p, bs, b: eval_step(model, build.variables_of(p, bs), b))
    eval_fn = sharding.one_step_at_a_time_on_cpu(eval_fn, mesh)
    metrics = {}
    for protocol in protocols:
        metrics |= run_eval(
            eval_fn,
            state.params,
            state.batch_stats,
            split,
            config,
            mesh,
            protocol,
            metric_prefix(protocol),
            stop,
        )
        if config.ema_decay:
            prefix = metric_prefix(protocol, ema=True)
            metrics |= run_eval(
                eval_fn, state.ema_params, state.batch_stats, split, config, mesh, protocol, prefix, stop
            )
    return metrics


@dataclasses.dataclass(frozen=True)
class Weights:
    """What evaluation reads of a TrainState: the weights, the statistics and their EMA."""

    params: Any
    batch_stats: Any
    ema_params: Any


def evaluate_checkpoint(
    config, workdir: str, protocols, which: str = "latest"
) -> tuple[int, dict[str, float]]:
    """Evaluates a run's latest (or best) checkpoint with `protocols`.

    Reads only the weights (params, batch_stats, ema_params) and the eval split: no optimizer, no
    schedule, no training split. The classes and channels come from the eval split.

    Args:
      config: the run's experiment config.
      workdir: the run's directory (its checkpoints/ and best/).
      protocols: names from jaxcnn.data.views.PROTOCOLS.
      which: "latest" (WORKDIR/checkpoints) or "best" (WORKDIR/best).

    Returns:
      (the checkpoint's step, the metrics of every protocol).
    """
    build.check_config(config)
    segmenting = segmentation.task_of(config) == "segmentation"  # the task seam: overlap-tile only
    for protocol in protocols:
        if segmenting and protocol != "center":
            raise ValueError(
                f"protocol {protocol!r}: a segmentation run evaluates by overlap-tile only (center)"
            )
        views.check_protocol(protocol)
    if which not in ("latest", "best"):
        raise ValueError(f"checkpoint must be 'latest' or 'best', got {which!r}")
    eval_split = build.open_split(config, config.dataset.eval_split)
    mesh = sharding.create_mesh(config.mesh.model)
    with jax.set_mesh(mesh):  # models with sharding annotations (two towers) trace against it
        model = build.create_model(config, eval_split.num_classes)
        image_shape = (config.input.image_size,) * 2 + (eval_split.channels,)
        target = build.abstract_weights(model, config, mesh, image_shape)
        step, weights = checkpoint.restore_weights(
            workdir, target, best=which == "best", best_metric=config.checkpoint.best_metric
        )
        if segmenting:
            return step, segmentation.evaluate_state(model, Weights(**weights), eval_split, config, mesh)
        return step, evaluate_state(model, Weights(**weights), eval_split, config, mesh, protocols)


def evaluate_pretrained(config, tag: str | None, path: str | None, protocols) -> dict[str, float]:
    """Published (or given) torchvision weights (jaxcnn.load_pretrained) on config's eval split.

    The weights' own preprocessing replaces the config's: the row's crop and resize ratio, and its
    mean/std (GoogLeNet's and Inception v3's transform_input) applied to the standardised images.
    The split must have the weights' 1000 ImageNet classes in torchvision's order (imagenet2012).
    """
    import copy

    from jaxcnn import pretrained

    row = pretrained.find_row(config.model.name, tag)
    config = copy.deepcopy(config)
    config.input.image_size, config.eval.crop_ratio = row["crop"], row["crop"] / row["resize"]
    config.input.normalize, config.ema_decay = "standardize", 0.0
    build.check_config(config)
    for protocol in protocols:
        views.check_protocol(protocol)
    overrides = {k: v for k, v in config.model.items() if k != "name"}
    # The weights first: reading a .pth file imports torch, which goes before TensorFlow (the split).
    model, variables = pretrained.load_pretrained(config.model.name, row["tag"], path=path, **overrides)
    eval_split = input_lib.split_from_config(config, config.dataset.eval_split)
    if eval_split.num_classes != 1000:
        raise ValueError(
            f"{config.dataset.name} has {eval_split.num_classes} classes; the weights score ImageNet's 1000"
        )
    model = pretrained.with_input_adapter(
        model, pretrained.input_adapter(row, *input_lib.MEAN_STD[config.dataset.name.split("/")[0]])
    )
    mesh = sharding.create_mesh(config.mesh.model)
    with jax.set_mesh(mesh):
        weights = {"params": variables["params"], "batch_stats": variables.get("batch_stats", {})}
        weights = jax.device_put(weights, build.state_sharding(weights, mesh))
        return evaluate_state(model, Weights(ema_params={}, **weights), eval_split, config, mesh, protocols)


def main(argv, config):
    from absl import flags

    from jaxcnn import run_dir, startup

    del argv
    startup.quiet_command_line()  # no TensorFlow banner, no absl INFO; tf.data sees no GPU
    FLAGS = flags.FLAGS
    protocols = [p for p in FLAGS.protocols.split(",") if p] or list(config.eval.protocols)
    try:
        if FLAGS.weights or FLAGS.path:  # pretrained weights, not a run: printed, nothing written
            metrics = evaluate_pretrained(config, FLAGS.weights or None, FLAGS.path or None, protocols)
            for protocol in protocols:
                print(f"{config.model.name} {FLAGS.weights or FLAGS.path}: {describe(metrics, protocol)}")
            return
        if not FLAGS.workdir:
            raise ValueError(
                "--workdir=RUN (or --weights=TAG / --path=FILE for pretrained weights) is required"
            )
        # The run's own lock (jaxcnn/run_dir.py), held by process 0: no training or other evaluation
        # writes meanwhile.
        is_writer = jax.process_index() == 0
        lock = run_dir.WorkdirLock(FLAGS.workdir, "evaluation", read_only=True) if is_writer else None
        with lock or contextlib.nullcontext():
            differences = run_dir.differences_from_run(config, FLAGS.workdir)
            step, metrics = evaluate_checkpoint(config, FLAGS.workdir, protocols, FLAGS.checkpoint)
            for protocol in protocols:  # printed first: an unwritable workdir costs no numbers
                print(f"step {step}: {describe(metrics, protocol)}", flush=True)
            if differences:
                label = ",".join(f"{k}={b}" for k, (_, b) in differences.items())
                changes = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in differences.items())
                print(f"not the run's config ({changes}): recorded under the keys' suffix @{label}")
                metrics = {f"{k}@{label}": v for k, v in metrics.items()}
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
    import functools
    import sys

    from absl import app, flags

    from jaxcnn import config_lib

    flags.DEFINE_string(
        "workdir", None, "The run's directory (its checkpoints/ and best/; its config.json is the config)."
    )
    flags.DEFINE_string("protocols", "", "Comma-separated: center, ten_crop, multi_scale, crops144.")
    flags.DEFINE_string("checkpoint", "latest", "latest (WORKDIR/checkpoints) or best (WORKDIR/best).")
    flags.DEFINE_string("weights", "", "Instead of a run: a tag of jaxcnn.list_pretrained(MODEL).")
    flags.DEFINE_string("path", "", "Instead of a run: a torchvision state-dict file for MODEL.")

    def _run_config(rest):
        # Without --config: the config the run recorded (WORKDIR/config.json, jaxcnn/run_dir.py).
        from jaxcnn import run_dir

        workdirs = [a.split("=", 1)[1] for a in rest if a.startswith(("--workdir=", "-workdir="))]
        return run_dir.manifest_config(workdirs[-1]) if workdirs else None

    # --config=configs/X.py (else the run's own) and --config.KEY=VALUE
    config, argv = config_lib.config_or_exit(sys.argv, default=_run_config)
    app.run(functools.partial(main, config=config), argv=argv)
