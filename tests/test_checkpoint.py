"""Checkpoints (jaxcnn/checkpoint.py): the weights alone restored from a saved state, the best-k set
kept by evaluation, and a checkpoint of another model refused without being set aside.

Runs that are preempted, killed or corrupted mid-training are in test_survival.py."""

import errno
import os

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from helpers import mnist_config

from jaxcnn import build, checkpoint, sharding
from jaxcnn.checkpoint import load_best
from jaxcnn.metric_writer import read_metrics
from jaxcnn.train import train_and_evaluate


def test_restore_weights_reads_batch_stats_and_leaves_the_optimizer_state(tmp_path):
    mesh = sharding.create_mesh()
    replicated = sharding.replicated(mesh)
    arrays = {"w": np.arange(6.0, dtype=np.float32).reshape(2, 3), "mean": np.full(3, 0.5, np.float32)}
    state = build.TrainState(
        step=jax.numpy.asarray(3),
        params={"conv": {"kernel": arrays["w"]}},
        batch_stats={"bn": {"mean": arrays["mean"]}},
        opt_state={"momentum": np.ones((7, 7), np.float32)},  # a shape nothing here asks for
        rng=jax.random.PRNGKey(0),
        ema_params={},
    )
    ckpt = checkpoint.Checkpointer(str(tmp_path), every_steps=3, keep=1)
    ckpt.maybe_save(3, jax.device_put(state, replicated), {"step": 3})
    ckpt.close()
    spec = lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=replicated)
    target = {"params": jax.tree.map(spec, state.params), "ema_params": {}}
    target["batch_stats"] = jax.tree.map(spec, state.batch_stats)
    step, weights = checkpoint.restore_weights(str(tmp_path), target)
    assert step == 3 and weights["ema_params"] == {}
    np.testing.assert_array_equal(weights["params"]["conv"]["kernel"], arrays["w"])
    np.testing.assert_array_equal(weights["batch_stats"]["bn"]["mean"], arrays["mean"])
    target["batch_stats"] = {"bn": {"mean": jax.ShapeDtypeStruct((4,), np.float32, sharding=replicated)}}
    differ = r"1 arrays differ; \['batch_stats'\]\['bn'\]\['mean'\]: \(3,\) there, \(4,\) here"
    with pytest.raises(ValueError, match=differ):
        checkpoint.restore_weights(str(tmp_path), target)


def test_keep_best_keeps_the_lowest_evaluations(mnist_split, tmp_path):
    config = mnist_config(
        num_train_steps=50, eval_every_steps=10, checkpoint_every_steps=25, log_every_steps=10
    )
    config.dataset.train_split = "test"  # the prepared MNIST test split keeps this fast
    config.checkpoint.keep_best = 2
    train_and_evaluate(config, str(tmp_path))
    errors = {r["step"]: r["eval/top1_error"] for r in read_metrics(str(tmp_path)) if "eval/top1_error" in r}
    kept = sorted(int(p.name) for p in (tmp_path / "best").iterdir() if p.name.isdigit())
    assert kept == sorted(sorted(errors, key=lambda s: (errors[s], s))[:2])
    best = min(errors, key=errors.get)
    assert int(load_best(str(tmp_path))["step"]) == best


def test_resuming_another_model_is_refused_and_keeps_its_checkpoints(mnist_split, tmp_path):
    config = mnist_config(
        num_train_steps=10, eval_every_steps=10, checkpoint_every_steps=10, log_every_steps=10
    )
    config.dataset.train_split = "test"
    train_and_evaluate(config, str(tmp_path))
    config.model.name, config.num_train_steps = "lenet5", 20
    config.resume.allow_changes = "model.name,num_train_steps"  # past the manifest, refused by shapes
    with pytest.raises(ValueError, match="checkpoint 10 in .* holds another model or optimizer state"):
        train_and_evaluate(config, str(tmp_path))
    assert (tmp_path / "checkpoints" / "10" / "state").is_dir()
    assert not (tmp_path / "corrupt_checkpoints").exists()


def test_a_failing_save_is_one_line_at_the_next_step_and_keeps_the_earlier_ones(
    mnist_split, tmp_path, monkeypatch, capfd
):
    # A full disk under the background save of step 20: the data record's write fails.
    json_handler = ocp.JsonCheckpointHandler
    write = json_handler._save_fn

    async def disk_full_at_20(self, item, directory):
        if os.path.basename(os.path.dirname(str(directory))).startswith("20."):
            raise OSError(errno.ENOSPC, "No space left on device", str(directory / "metadata"))
        return await write(self, item, directory)

    monkeypatch.setattr(json_handler, "_save_fn", disk_full_at_20)
    config = mnist_config("lenet5", num_train_steps=40, eval_every_steps=40, log_every_steps=5)
    with pytest.raises(checkpoint.CheckpointWriteError) as e:
        train_and_evaluate(config, str(tmp_path))
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith("could not write the checkpoint of step 20 (OSError: No space left on device: ")
    assert f"{tmp_path}/checkpoints/20" in message and "the latest complete one is step 10" in message
    # Found at the next step: training stopped well before the save of step 30.
    assert max(r["step"] for r in read_metrics(str(tmp_path))) < 30
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Event loop is closed" not in err
    monkeypatch.undo()  # the disk has room again: the rerun resumes from step 10
    result = train_and_evaluate(config, str(tmp_path))
    assert result["eval/num_examples"] == 10_000 and (tmp_path / "checkpoints" / "40").is_dir()
