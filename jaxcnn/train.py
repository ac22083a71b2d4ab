"""Training: the pure train step, and train_and_evaluate(config, workdir) (state built by jaxcnn.build)."""

from __future__ import annotations

import functools
import itertools
import signal
import sys
import threading
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from jaxcnn import build, checkpoint, evaluate, losses, optim, preflight, run_dir, segmentation, sharding
from jaxcnn.build import TrainState, state_sharding, variables_of
from jaxcnn.data import input as input_lib
from jaxcnn.metric_writer import MetricWriter, has_record, read_metrics


class Preempted(Exception):
    """Raised after a SIGTERM (preemption notice) or a first Ctrl-C (SIGINT): the step was finished
    and checkpointed. exit_code: 0 after SIGTERM (the scheduler reruns the command), 130 after Ctrl-C."""

    def __init__(self, step: int, workdir: str, interrupted: bool = False):
        what = "interrupted (Ctrl-C)" if interrupted else "preempted"
        super().__init__(f"{what}: saved the checkpoint of step {step} in {workdir}; rerun to resume")
        self.step = step
        self.exit_code = 130 if interrupted else 0


def save_convs(prim, *_, **__) -> bool:
    # The remat policy "convs": keep what convolutions and matmuls produce (the expensive part);
    # recompute normalisation, activations and pooling during the backward pass.
    return prim in (jax.lax.conv_general_dilated_p, jax.lax.dot_general_p)


def classification_objective(outputs, batch, loss_config) -> tuple[jax.Array, jax.Array]:
    """(loss, top-1 error) of one batch. Models with auxiliary heads (GoogLeNet, Inception v3) return
    (logits, aux_logits) in training; the auxiliary losses are added with weight loss_config.aux_weight."""
    logits, aux = outputs if isinstance(outputs, tuple) else (outputs, ())
    loss = losses.classification_loss(logits, batch["label"], loss_config).mean()
    for aux_logits in aux:
        aux_loss = losses.classification_loss(aux_logits, batch["label"], loss_config).mean()
        loss = loss + loss_config.aux_weight * aux_loss
    return loss, 1.0 - evaluate.topk_correct(logits, batch["label"], 1).mean()


# The task seam (config.task): each task's objective -> (loss, error), and its error's logged name.
OBJECTIVES = {
    "classification": (classification_objective, "top1_error"),
    "segmentation": (segmentation.objective, "pixel_error"),
}


def train_step(model, tx, config, state: TrainState, batch) -> tuple[TrainState, dict]:
    """One optimizer step on a (sharded) global batch; returns the new state and the batch's metrics.

    With config.grad_accum_steps = k the batch is split into k interleaved micro-batches (each
    spread over every device), their gradients averaged, BatchNorm statistics updated in sequence.
    """
    rng = jax.random.fold_in(state.rng, state.step)
    loss_config, k = config.loss, config.grad_accum_steps
    objective, error_name = OBJECTIVES[segmentation.task_of(config)]

    def forward(params, batch_stats, images, rng):
        return model.apply(
            variables_of(params, batch_stats),
            images,
            train=True,
            rngs={"dropout": rng},
            mutable=["batch_stats"],
        )

    if config.remat == "convs":
        forward = jax.checkpoint(forward, policy=save_convs)

    def loss_fn(params, batch_stats, micro, rng):
        outputs, updates = forward(params, batch_stats, micro["image"], rng)
        loss, error = objective(outputs, micro, loss_config)
        return loss, (error, updates.get("batch_stats", batch_stats))

    grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
    if k == 1:
        (loss, (top1_error, batch_stats)), grads = grad_fn(state.params, state.batch_stats, batch, rng)
    else:
        # Micro-batch j holds rows j, j + k, j + 2k, ...: every device keeps its share of each.
        micro_batches = jax.tree.map(lambda x: x.reshape(-1, k, *x.shape[1:]).swapaxes(0, 1), batch)

        def accumulate(carry, inputs):
            batch_stats, grad_sum, loss_sum, error_sum = carry
            j, micro = inputs
            (loss, (error, batch_stats)), grads = grad_fn(
                state.params, batch_stats, micro, jax.random.fold_in(rng, j)
            )
            grad_sum = jax.tree.map(jnp.add, grad_sum, grads)
            return (batch_stats, grad_sum, loss_sum + loss, error_sum + error), None

        zeros = jax.tree.map(jnp.zeros_like, state.params)
        init = (state.batch_stats, zeros, jnp.zeros(()), jnp.zeros(()))
        (batch_stats, grad_sum, loss_sum, error_sum), _ = jax.lax.scan(
            accumulate, init, (jnp.arange(k), micro_batches)
        )
        grads = jax.tree.map(lambda g: g / k, grad_sum)
        loss, top1_error = loss_sum / k, error_sum / k

    param_updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, param_updates)
    ema_params = state.ema_params
    if config.ema_decay:
        decay = config.ema_decay
        ema_params = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, ema_params, params)
    new_state = state.replace(
        step=state.step + 1,
        params=params,
        batch_stats=batch_stats,
        opt_state=opt_state,
        ema_params=ema_params,
    )
    return new_state, {"loss": loss, error_name: top1_error}


def jit_train_step(model, tx, config, mesh, state, first_batch=None):
    """train_step as the trainer runs it: jitted once, the state donated, its shardings kept.

    With `first_batch` (sharded), the step is compiled now for (state, first_batch) and its memory
    checked (preflight.check_memory); jit keeps that executable for the first call.
    """
    step_fn = jax.jit(
        functools.partial(train_step, model, tx, config),
        out_shardings=(state_sharding(state, mesh), sharding.replicated(mesh)),
        donate_argnums=0,
    )
    if first_batch is not None:
        preflight.check_memory(
            step_fn, state, first_batch, config, sharding.data_axis_size(config.mesh.model)
        )
    return sharding.one_step_at_a_time_on_cpu(step_fn, mesh)


def data_position(config, split, step: int, steps_per_epoch: int) -> dict:
    """The input pipeline's position after `step` steps, stored with each checkpoint."""
    epoch, offset = divmod(step, steps_per_epoch)
    return {
        "step": step,
        "epoch": epoch,
        "examples_into_epoch": offset * config.batch_size,
        "batch_size": config.batch_size,
        "seed": config.seed,
        "dataset": config.dataset.name,
        "split": split.split,
        "num_examples": split.num_examples,
    }


def _check_position(saved: dict, expected: dict, workdir: str) -> None:
    """A restored run must read the data the way the checkpointed one did, or it is not a resume."""
    for key in ("batch_size", "seed", "dataset", "split", "num_examples", "step"):
        if saved.get(key) != expected[key]:
            raise ValueError(
                f"the checkpoint in {workdir} was written with {key}={saved.get(key)!r} but this run has "
                f"{key}={expected[key]!r}; resuming would not replay the same examples. Use the "
                f"checkpoint's value or a new --workdir"
            )


class _PreemptionNotice:
    """SIGTERM, or a first Ctrl-C (SIGINT), sets a flag that the loop checks after each step; a second
    Ctrl-C ends the process at once (the default SIGINT action, restored by the first). Multi-host
    runs use JAX's own preemption sync point so that every process stops at the same step."""

    def __init__(self):
        self.requested = self.interrupted = False
        self._previous = {}
        if jax.process_count() == 1 and threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                self._previous[signum] = signal.signal(signum, self._handler)

    def _handler(self, signum, frame):
        self.requested = True
        if signum == signal.SIGINT:
            self.interrupted = True
            signal.signal(signal.SIGINT, signal.SIG_DFL)  # a second Ctrl-C stops without saving
            print(
                "\nCtrl-C: finishing this step and saving; press Ctrl-C again to stop at once",
                file=sys.stderr,
                flush=True,
            )

    def __call__(self, step: int) -> bool:
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            return multihost_utils.reached_preemption_sync_point(step)
        return self.requested

    def now(self) -> bool:
        """Whether a notice came, asked between evaluation batches. Multi-host runs answer False:
        their processes must agree on where to stop, which only the step loop's sync point does."""
        return jax.process_count() == 1 and self.requested

    def close(self):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)


def train_and_evaluate(config, workdir: str) -> dict[str, float]:
    """Trains config's model on config's dataset in `workdir`, resuming from its latest checkpoint.

    Args:
      config: an ml_collections.ConfigDict as returned by a configs/*.py get_config().
      workdir: where checkpoints, metrics.jsonl and TensorBoard events go.

    Returns:
      The final evaluation metrics (eval/top1_error, eval/top5_error as fractions).

    Raises:
      Preempted: after a SIGTERM, once the current step is finished and checkpointed.
      FloatingPointError: when the training loss is not finite (nothing from that step is saved).
    """
    build.check_config(config)
    # One writer per workdir (a lock held for the whole run) and the config recorded and checked
    # against the manifest of the run it resumes: jaxcnn/run_dir.py.
    with run_dir.RunDir(config, workdir, resuming=checkpoint.has_checkpoint(workdir)):
        mesh = sharding.create_mesh(config.mesh.model)
        with jax.set_mesh(mesh):  # models with sharding annotations (two towers) trace against it
            return _train_and_evaluate(config, workdir, mesh)


def _train_and_evaluate(config, workdir: str, mesh) -> dict[str, float]:
    train_split = build.open_split(config, config.dataset.train_split)
    eval_split = build.open_split(config, config.dataset.eval_split)
    # The task seam: segmentation reads its own batches and evaluates whole images by overlap-tile.
    if segmentation.task_of(config) == "segmentation":
        from jaxcnn.data import segmentation as seg_data

        def make_batches(*args, **kwargs):  # NumPy augmentation on a thread, ahead of the step
            return segmentation.prefetch(seg_data.train_batches(*args, **kwargs))

        final_key = "eval/mean_iou"
        evaluate_all = functools.partial(
            segmentation.evaluate_state, split=eval_split, config=config, mesh=mesh
        )
    else:
        make_batches, final_key = input_lib.train_batches, "eval/top1_error"
        evaluate_all = functools.partial(
            evaluate.evaluate_state,
            split=eval_split,
            config=config,
            mesh=mesh,
            protocols=config.eval.protocols,
        )
    preflight.check_input_size(
        build.create_model(config, train_split.num_classes),
        config.model.name,
        config.input.image_size,
        train_split.channels,
    )
    built = build.build(
        config,
        num_classes=train_split.num_classes,
        image_shape=(config.input.image_size,) * 2 + (train_split.channels,),
        num_train_examples=train_split.num_examples,
        mesh=mesh,
    )
    model, tx, schedule, state = built.model, built.tx, built.schedule, built.state
    steps = built.durations
    steps_per_epoch, num_steps = steps.steps_per_epoch, steps.num_train_steps

    ckpt = checkpoint.Checkpointer(
        workdir,
        steps.checkpoint_every,
        config.checkpoint.keep,
        config.checkpoint.keep_best,
        config.checkpoint.best_metric,
    )
    state, saved_position = ckpt.restore(state)
    start = int(state.step)
    if saved_position is not None:
        _check_position(saved_position, data_position(config, train_split, start, steps_per_epoch), workdir)
    is_writer = jax.process_index() == 0
    writer = MetricWriter(workdir, resume_step=start) if is_writer else None

    evaluate_all = functools.partial(evaluate_all, model)

    batches = make_batches(
        train_split,
        config,
        start_step=start,
        process_index=jax.process_index(),
        process_count=jax.process_count(),
    )
    # The first batch compiles the step, and the memory preflight reads that compilation.
    sharded = (sharding.shard_batch(batch, mesh) for batch in batches)
    first = next(sharded) if start < num_steps else None
    step_fn = jit_train_step(model, tx, config, mesh, state, first)
    sharded = itertools.chain([first] if first is not None else [], sharded)
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

    preemption = _PreemptionNotice()

    def evaluate_and_log(done, state, position):
        eval_start = time.perf_counter()
        try:
            metrics = evaluate_all(state, stop=preemption.now)
        except evaluate.EvaluationAbandoned:
            # A preemption notice during evaluation: keep the step (saved, unless it was no
            # checkpoint step), leave; the rerun evaluates it first, having no record of it.
            ckpt.maybe_save(done, state, position, force=True)
            raise Preempted(done, workdir, interrupted=preemption.interrupted) from None
        for protocol in config.eval.protocols:  # printed before written: a failed write costs no numbers
            progress.write(f"step {done}: {evaluate.describe(metrics, protocol)}")
        if writer:  # eval/seconds: the wall time of this evaluation (jaxcnn.report sums them)
            writer.write(done, {**metrics, "eval/seconds": time.perf_counter() - eval_start})
        ckpt.save_if_best(done, state, position, metrics)
        return metrics

    pending, window_start, window_steps = [], time.perf_counter(), 0
    eval_metrics: dict[str, float] = {}
    try:
        # A run stopped after saving an evaluation step but before logging its evaluation does it now.
        if start and (start % steps.eval_every == 0 or start == num_steps):
            if not has_record(workdir, start, final_key):
                position = data_position(config, train_split, start, steps_per_epoch)
                eval_metrics = evaluate_and_log(start, state, position)
                state = _after_evaluation(config, state, eval_metrics)
            elif config.schedule.name == "plateau":  # the checkpoint precedes its logged evaluation
                state = _after_evaluation(config, state, _recorded_evaluation(workdir, start))
        for step in range(start, num_steps):
            state, metrics = step_fn(state, next(sharded))
            pending.append(metrics)
            done = step + 1
            window_steps += 1
            progress.update()
            if step == start:
                restart_clock(progress)
            last = done == num_steps
            preempted = preemption(done)
            # Flush at checkpoints too, so a resumed run averages over the same windows.
            if done % steps.log_every == 0 or done % steps.checkpoint_every == 0 or last or preempted:
                stacked = jax.device_get(pending)  # the loop's only host sync (on accelerators)
                _check_finite([float(m["loss"]) for m in stacked], done - len(stacked) + 1)
                elapsed = time.perf_counter() - window_start
                train = {
                    **{f"train/{k}": float(np.mean([m[k] for m in stacked])) for k in stacked[0]},
                    "train/learning_rate": float(schedule(done - 1)) * optim.rate_scale(state.opt_state),
                    "train/images_per_second": window_steps * config.batch_size / elapsed,
                    "train/seconds": elapsed,  # wall time of this window's steps (evaluations excluded)
                }
                if writer:
                    writer.write(done, train)
                progress.set_postfix(
                    loss=f"{train['train/loss']:.4f}", img_s=f"{train['train/images_per_second']:.0f}"
                )
                pending, window_start, window_steps = [], time.perf_counter(), 0
            position = data_position(config, train_split, done, steps_per_epoch)
            # Save first: an evaluation that fails (a bad eval record, no memory) costs no training.
            ckpt.maybe_save(done, state, position, force=last or preempted)
            if done % steps.eval_every == 0 or last:
                eval_metrics = evaluate_and_log(done, state, position)
                state = _after_evaluation(config, state, eval_metrics)
                window_start = time.perf_counter()  # eval time is not training throughput
            if preempted and not last:
                raise Preempted(done, workdir, interrupted=preemption.interrupted)
    finally:
        preemption.close()
        progress.close()
        ckpt.close()  # waits for the saves in flight: what was written stays complete
        if writer:
            writer.close()
    if not eval_metrics:  # resumed after the final step: report the saved model
        eval_metrics = evaluate_all(state)
    return eval_metrics


# --- reduce-on-plateau hook (jaxcnn.optim.after_evaluation) ---------------------------------------
# Each held-out evaluation updates the plateau rule's state inside opt_state, after the step's
# checkpoint was saved: the checkpoint of an evaluation step holds the state before that evaluation,
# and a resume from it replays the evaluation's logged metrics (or evaluates again) to continue exactly.
def _after_evaluation(config, state, metrics):
    return state.replace(opt_state=optim.after_evaluation(config, state.opt_state, metrics))


def _recorded_evaluation(workdir: str, step: int) -> dict:
    return {k: v for r in read_metrics(workdir) if r["step"] == step for k, v in r.items()}


# --- end of the plateau hook ------------------------------------------------------------------------


def restart_clock(progress) -> None:
    """Starts the progress bar's clock (its rate and ETA) now: after the first step, which holds the
    compilation, so that the first ETA counts steps, not compiling."""
    done = progress.n
    progress.reset(total=progress.total)
    progress.initial = progress.n = progress.last_print_n = done


def _check_finite(losses_in_window: list[float], first_step: int) -> None:
    for offset, loss in enumerate(losses_in_window):
        if not np.isfinite(loss):
            step = first_step + offset
            raise FloatingPointError(
                f"train/loss is {loss} at step {step}; stopped before saving it (the last checkpoint, "
                f"before step {step}, is kept)"
            )
