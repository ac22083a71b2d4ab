"""evaluate_checkpoint: the weights alone restored (no optimizer, no schedule, no training split),
the same numbers as the trainer's own evaluation; the wrong checkpoint is refused in one line."""

import json
import subprocess
import sys

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from helpers import ROOT

from jaxcnn import build, checkpoint, config_lib, optim, sharding
from jaxcnn.data import input as input_lib
from jaxcnn.evaluate import evaluate_checkpoint
from jaxcnn.metric_writer import read_metrics
from jaxcnn.train import train_and_evaluate


def _config():
    config = config_lib.load_config(str(ROOT / "configs" / "mnist_convnet.py"))
    config.model.name = "lenet5_modern"
    config.batch_size, config.input.image_size = 8, 32
    config.dataset.train_split, config.dataset.eval_split = "test", "test[:256]"  # small and prepared
    config.ema_decay = 0.5  # so the EMA weights are restored and evaluated too
    config.num_train_steps = config.eval_every_steps = config.checkpoint_every_steps = 10
    config.log_every_steps = 10
    config.eval_every_epochs = config.checkpoint_every_epochs = 0  # the intervals above are steps
    config.checkpoint.keep_best = 1
    return config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    train_and_evaluate(_config(), str(workdir))
    return workdir


def test_restores_the_weights_alone_and_reproduces_the_trainers_evaluation(trained, monkeypatch):
    opened = []
    open_split = input_lib.split_from_config
    monkeypatch.setattr(input_lib, "split_from_config", lambda c, s: opened.append(s) or open_split(c, s))

    def refuse(*args, **kwargs):
        raise AssertionError("evaluation built an optimizer or a schedule")

    monkeypatch.setattr(optim, "create_optimizer", refuse)
    monkeypatch.setattr(optim, "create_schedule", refuse)
    for which in ("latest", "best"):
        step, metrics = evaluate_checkpoint(_config(), str(trained), ["center"], which)
        assert opened[-1:] == ["test[:256]"] and "test" not in opened  # never the training split
        logged = next(r for r in read_metrics(str(trained)) if "eval/top1_error" in r)
        assert step == logged["step"] == 10
        for key in ("eval/loss", "eval/top1_error", "eval_ema/top1_error", "eval_ema/loss"):
            assert metrics[key] == pytest.approx(logged[key], rel=1e-6), key
        assert metrics["eval/num_examples"] == 256


def test_restore_weights_reads_exactly_the_saved_arrays(trained):
    config = _config()
    mesh = sharding.create_mesh()
    model = build.create_model(config, 10)
    target = build.abstract_weights(model, config, mesh, (32, 32, 1))
    step, weights = checkpoint.restore_weights(str(trained), target)
    saved = ocp.StandardCheckpointer().restore(trained / "checkpoints" / "10" / "state")
    assert step == 10 and set(weights) == {"params", "batch_stats", "ema_params"}
    assert weights["batch_stats"] == {}  # lenet5_modern keeps none: nothing was read for it
    for name in ("params", "ema_params"):
        jax.tree.map(np.testing.assert_array_equal, weights[name], saved[name])
        shardings = {x.sharding for x in jax.tree.leaves(weights[name])}
        assert shardings == {s.sharding for s in jax.tree.leaves(target[name])}


def test_another_model_is_refused_in_one_line(trained):
    config = _config()
    config.model.name = "lenet5"
    with pytest.raises(ValueError, match="holds another model .* evaluate with the config it was trained"):
        evaluate_checkpoint(config, str(trained), ["center"])


def test_a_run_without_checkpoints_is_a_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no readable checkpoint in .*/best"):
        evaluate_checkpoint(_config(), str(tmp_path), ["center"], "best")
    with pytest.raises(ValueError, match="checkpoint must be 'latest' or 'best', got 'newest'"):
        evaluate_checkpoint(_config(), str(tmp_path), ["center"], "newest")


def _evaluate_cli(cli_env, *args):
    proc = subprocess.run(
        [sys.executable, "-m", "jaxcnn.evaluate", *args],
        cwd=ROOT,
        env=cli_env(1),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_the_command_line_reads_the_runs_config_and_never_overwrites_its_results(trained, cli_env):
    results = trained / "eval_results.json"
    # Without --config: the run's own config (config.json), its results under the usual keys.
    out = _evaluate_cli(cli_env, f"--workdir={trained}")
    assert "step 10: center top-1 error" in out and "not the run's config" not in out
    own = json.loads(results.read_text())["10"]["eval/top1_error"]
    # Another input normalisation measures another experiment: recorded beside, never over, the run's.
    out = _evaluate_cli(cli_env, f"--workdir={trained}", "--config.input.normalize=unit")
    assert "not the run's config (input.normalize: 'standardize' -> 'unit')" in out
    recorded = json.loads(results.read_text())["10"]
    assert recorded["eval/top1_error"] == own
    assert "eval/top1_error@input.normalize=unit" in recorded
