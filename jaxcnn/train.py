"""Training: TrainState, the pure train step, and train_and_evaluate(config, workdir)."""

from __future__ import annotations

import functools
import time
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from jaxcnn import checkpoint, config_lib, evaluate, losses, optim, registry, sharding
from jaxcnn.data import input as input_lib
from jaxcnn.metric_writer import MetricWriter


@flax.struct.dataclass
class TrainState:
    """Everything a step changes. The RNG is not state: step s uses fold_in(seed, s)."""

    step: jax.Array
    params: Any
    batch_stats: Any
    opt_state: Any


def create_model(config, num_classes: int):
    """The config's model: config.model.name plus any other config.model keys as overrides."""
    overrides = {k: v for k, v in config.model.items() if k != "name"}
    return registry.create_model(config.model.name, num_classes=num_classes, **overrides)


def init_state(model, tx, config, mesh) -> TrainState:
    """Initialises parameters and optimizer state directly replicated over the mesh."""
    size = config.input.image_size
    channels = registry.model_info(config.model.name).input_size[-1]
    dummy = jnp.zeros((1, size, size, channels), jnp.float32)

    def init(rng):
        variables = model.init({"params": rng, "dropout": rng}, dummy, train=False)
        params = variables["params"]
        return TrainState(
            step=jnp.zeros((), jnp.int32),
            params=params,
            batch_stats=variables.get("batch_stats", {}),
            opt_state=tx.init(params),
        )

    rng = jax.random.PRNGKey(config.seed)
    jax.eval_shape(init, rng)  # shape errors surface here, before anything is allocated
    return jax.jit(init, out_shardings=sharding.replicated(mesh))(rng)


def variables_of(state: TrainState) -> dict:
    if state.batch_stats:
        return {"params": state.params, "batch_stats": state.batch_stats}
    return {"params": state.params}


def train_step(model, tx, seed: int, loss_config, state: TrainState, batch) -> tuple[TrainState, dict]:
    """One SGD step on a (sharded) global batch; returns the new state and the batch's metrics."""
    rng = jax.random.fold_in(jax.random.PRNGKey(seed), state.step)

    def loss_fn(params):
        variables = {**variables_of(state), "params": params}
        outputs, updates = model.apply(
            variables, batch["image"], train=True, rngs={"dropout": rng}, mutable=["batch_stats"]
        )
        # Models with auxiliary heads (GoogLeNet, Inception v3) return (logits, aux_logits) in
        # training; the auxiliary losses are added with weight loss_config.aux_weight.
        logits, aux = outputs if isinstance(outputs, tuple) else (outputs, ())
        loss = losses.classification_loss(logits, batch["label"], loss_config).mean()
        for aux_logits in aux:
            aux_loss = losses.classification_loss(aux_logits, batch["label"], loss_config).mean()
            loss = loss + loss_config.aux_weight * aux_loss
        return loss, (logits, updates)

    (loss, (logits, updates)), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    param_updates, opt_state = tx.update(grads, state.opt_state, state.params)
    new_state = state.replace(
        step=state.step + 1,
        params=optax.apply_updates(state.params, param_updates),
        batch_stats=updates.get("batch_stats", state.batch_stats),
        opt_state=opt_state,
    )
    top1_error = 1.0 - evaluate.topk_correct(logits, batch["label"], 1).mean()
    return new_state, {"loss": loss, "top1_error": top1_error}


def run_eval(eval_fn, state, split, config, mesh) -> dict[str, float]:
    """Evaluates `state` on the whole split; sums stay on device until the end."""
    totals = None
    for batch in input_lib.eval_batches(
        split, config, process_index=jax.process_index(), process_count=jax.process_count()
    ):
        sums = eval_fn(state, sharding.shard_batch(batch, mesh))
        totals = sums if totals is None else jax.tree.map(jnp.add, totals, sums)
    return evaluate.summarize({k: float(v) for k, v in jax.device_get(totals).items()})


def train_and_evaluate(config, workdir: str) -> dict[str, float]:
    """Trains config's model on config's dataset in `workdir`, resuming from its latest checkpoint.

    Args:
      config: an ml_collections.ConfigDict as returned by a configs/*.py get_config().
      workdir: where checkpoints, metrics.jsonl and TensorBoard events go.

    Returns:
      The final evaluation metrics (eval/top1_error, eval/top5_error as fractions).
    """
    config_lib.validate(config)
    data_dir = config.dataset.data_dir or None
    train_split = input_lib.open_split(config.dataset.name, config.dataset.train_split, data_dir)
    eval_split = input_lib.open_split(config.dataset.name, config.dataset.eval_split, data_dir)
    steps_per_epoch, num_steps = config_lib.num_train_steps(config, train_split.num_examples)

    mesh = sharding.create_mesh()
    model = create_model(config, train_split.num_classes)
    schedule = optim.create_schedule(config, steps_per_epoch, num_steps)
    tx = optim.create_optimizer(config, schedule)
    state = init_state(model, tx, config, mesh)

    ckpt = checkpoint.Checkpointer(workdir, config.checkpoint_every_steps, config.checkpoint.keep)
    state = ckpt.restore(state)
    start = int(state.step)
    is_writer = jax.process_index() == 0
    writer = MetricWriter(workdir, resume_step=start) if is_writer else None

    replicated = sharding.replicated(mesh)
    step_fn = jax.jit(
        functools.partial(train_step, model, tx, config.seed, config.loss),
        out_shardings=(replicated, replicated),
        donate_argnums=0,
    )
    eval_fn = jax.jit(lambda s, b: evaluate.eval_step(model, variables_of(s), b))
    batches = input_lib.train_batches(
        train_split,
        config,
        start_step=start,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
    )

    progress = tqdm(
        total=num_steps,
        initial=start,
        unit="step",
        disable=not is_writer,
        desc=f"{config.model.name} on {config.dataset.name}",
        dynamic_ncols=True,
        mininterval=2.0,
    )
    if start:
        progress.write(f"resumed from the checkpoint of step {start} in {workdir}")
    pending, window_start, window_steps = [], time.perf_counter(), 0
    eval_metrics: dict[str, float] = {}
    for step in range(start, num_steps):
        state, metrics = step_fn(state, sharding.shard_batch(next(batches), mesh))
        pending.append(metrics)
        done = step + 1
        window_steps += 1
        progress.update()
        last = done == num_steps
        # Flush at checkpoints too, so a resumed run averages over the same windows.
        if done % config.log_every_steps == 0 or done % config.checkpoint_every_steps == 0 or last:
            stacked = jax.device_get(pending)  # the only host sync of the training loop
            elapsed = time.perf_counter() - window_start
            train = {
                "train/loss": float(np.mean([m["loss"] for m in stacked])),
                "train/top1_error": float(np.mean([m["top1_error"] for m in stacked])),
                "train/learning_rate": float(schedule(done - 1)),
                "train/images_per_second": window_steps * config.batch_size / elapsed,
            }
            _check_finite(train["train/loss"], done)
            if writer:
                writer.write(done, train)
            progress.set_postfix(
                loss=f"{train['train/loss']:.4f}", img_s=f"{train['train/images_per_second']:.0f}"
            )
            pending, window_start, window_steps = [], time.perf_counter(), 0
        if done % config.eval_every_steps == 0 or last:
            eval_metrics = run_eval(eval_fn, state, eval_split, config, mesh)
            if writer:
                writer.write(done, eval_metrics)
            progress.write(
                f"step {done}: test top-1 error {100 * eval_metrics['eval/top1_error']:.2f}%, "
                f"top-5 {100 * eval_metrics['eval/top5_error']:.2f}% "
                f"({int(eval_metrics['eval/num_examples'])} examples)"
            )
            window_start = time.perf_counter()  # eval time is not training throughput
        ckpt.maybe_save(done, state, force=last)
    progress.close()
    ckpt.close()
    if writer:
        writer.close()
    if not eval_metrics:  # resumed after the final step: report the saved model
        eval_metrics = run_eval(eval_fn, state, eval_split, config, mesh)
    return eval_metrics


def _check_finite(loss: float, step: int) -> None:
    if not np.isfinite(loss):
        raise FloatingPointError(f"train/loss is {loss} at step {step}; stopping (no checkpoint saved)")
