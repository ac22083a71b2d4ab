"""train_and_evaluate end to end on real MNIST: learning, exact resume after kill -9, 1 vs 8 devices."""

import random
import re
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from helpers import ROOT

from jaxcnn import config_lib
from jaxcnn.build import check_config
from jaxcnn.metric_writer import read_metrics
from jaxcnn.train import train_and_evaluate

LENET = "--config=configs/lenet5_mnist.py"


def _load(name):
    return config_lib.load_config(str(ROOT / "configs" / f"{name}.py"))


def test_training_learns_real_mnist(mnist_split, tmp_path):
    config = _load("lenet5_mnist")
    config.model.name = "lenet5_modern"
    config.batch_size, config.num_train_steps = 64, 500
    config.optimizer.base_learning_rate, config.optimizer.reference_batch_size = 0.05, 64
    config.log_every_steps = 100  # evaluated and checkpointed at the end, before the recipe's epochs
    result = train_and_evaluate(config, str(tmp_path))
    # Chance is 90% error; a working net passes 5% within 500 steps (about 2.7% measured).
    assert result["eval/top1_error"] < 0.05
    assert result["eval/num_examples"] == 10000
    records = read_metrics(str(tmp_path))
    losses = [r["train/loss"] for r in records if "train/loss" in r]
    assert losses[-1] < 0.5 * losses[0]
    assert any("eval/top5_error" in r for r in records)
    assert (tmp_path / "checkpoints" / "500").is_dir()


def test_checkpoint_round_trip_is_exact(mnist_split, tmp_path):
    config = _load("lenet5_mnist")
    config.num_train_steps = 20  # evaluated and checkpointed at the end
    train_and_evaluate(config, str(tmp_path))
    restored = ocp.StandardCheckpointer().restore(tmp_path / "checkpoints" / "20" / "state")
    assert int(restored["step"]) == 20
    # A rerun with nothing left to do restores the same state and reports the same evaluation.
    again = train_and_evaluate(config, str(tmp_path))
    first = [r for r in read_metrics(str(tmp_path)) if "eval/top1_error" in r][-1]
    assert again["eval/top1_error"] == first["eval/top1_error"]


def _final(workdir):
    records = read_metrics(str(workdir))
    loss = [r["train/loss"] for r in records if "train/loss" in r][-1]
    error = [r["eval/top1_error"] for r in records if "eval/top1_error" in r][-1]
    return loss, error, records


def test_kill_9_then_rerun_matches_an_uninterrupted_run(mnist_split, tmp_path, cli_env, run_cli):
    args = [
        LENET,
        "--config.num_train_steps=1500",
        "--config.checkpoint_every_epochs=0",  # the recipe's intervals are epochs; these are steps
        "--config.checkpoint_every_steps=300",
        "--config.log_every_steps=100",
        "--config.eval_every_epochs=0",
        "--config.eval_every_steps=750",
    ]
    run_cli(*args, f"--workdir={tmp_path / 'straight'}")

    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "jaxcnn.main", *args, f"--workdir={killed}"],
        cwd=ROOT,
        env=cli_env(devices=1),  # the same single device as the uninterrupted run
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not (killed / "checkpoints" / "300").is_dir():
        assert proc.poll() is None and time.time() < deadline, "no first checkpoint"
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 2.0))
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    assert not (killed / "checkpoints" / "1500").exists(), "the kill came after the end"

    run_cli(*args, f"--workdir={killed}")
    loss_a, error_a, records_a = _final(tmp_path / "straight")
    loss_b, error_b, records_b = _final(killed)
    assert (loss_a, error_a) == (loss_b, error_b)
    drop = lambda rs: [{k: v for k, v in r.items() if "second" not in k} for r in rs]  # wall clock
    assert drop(records_a) == drop(records_b)  # every logged value, not just the last

    a = ocp.StandardCheckpointer().restore(tmp_path / "straight" / "checkpoints" / "1500" / "state")
    b = ocp.StandardCheckpointer().restore(killed / "checkpoints" / "1500" / "state")
    jax.tree.map(np.testing.assert_array_equal, a, b)


def test_one_and_eight_devices_give_the_same_loss(mnist_split, tmp_path, run_cli):
    args = [
        LENET,
        "--config.num_train_steps=200",  # evaluated and checkpointed at the end
        "--config.log_every_steps=200",
    ]
    losses = []
    for devices in (1, 8):
        run_cli(*args, f"--workdir={tmp_path / str(devices)}", devices=devices)
        losses.append(_final(tmp_path / str(devices))[0])
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


BAD = [
    ({"model.name": "lenet6"}, ValueError, "unknown model 'lenet6'"),
    ({"batch_size": 0}, ValueError, "config.batch_size must be a positive number, got 0"),
    ({"batch_size": -32}, ValueError, "config.batch_size must be a positive number, got -32"),
    ({"batch_size": 33}, ValueError, "config.batch_size=33 does not divide over the 2 devices"),
    ({"eval_batch_size": 999}, ValueError, "config.eval_batch_size=999 does not divide over the 2 devices"),
    ({"mesh.model": 3}, ValueError, "(model_parallel)=3 does not divide the 2 devices; use one of [1, 2]"),
    ({"mesh.model": 0}, ValueError, "config.mesh.model (model_parallel) must be a positive int, got 0"),
    ({"mesh.model": -2}, ValueError, "config.mesh.model (model_parallel) must be a positive int, got -2"),
    ({"optimizer.name": "adamw"}, ValueError, "optimizer.name='adamw'"),
    ({"loss.name": "hinge"}, ValueError, "loss.name='hinge'"),
    ({"precision": "float16"}, ValueError, "config.precision='float16'; allowed: float32, bfloat16"),
    ({"remat": "all"}, ValueError, "config.remat='all'; allowed: none, convs"),
    ({"grad_accum_steps": 0}, ValueError, "grad_accum_steps must be a positive number, got 0"),
    ({"grad_accum_steps": 3}, ValueError, "batch_size=32 does not split into grad_accum_steps=3"),
    ({"ema_decay": 1.0}, ValueError, "config.ema_decay must be in [0, 1), got 1.0"),
    ({"loss.label_smoothing": 0.1}, ValueError, "needs softmax_cross_entropy, not 'lecun_map'"),
    ({"checkpoint.keep": 0}, ValueError, "checkpoint.keep must be a positive number, got 0"),
    ({"checkpoint.keep_best": 2, "checkpoint.best_metric": "acc"}, ValueError, "best_metric='acc'"),
    ({"optimizer.base_learning_rate": 0.0}, ValueError, "base_learning_rate must be a positive"),
    ({"optimizer.base_learning_rate": -0.1}, ValueError, "got -0.1"),
    ({"dataset.name": "mnits"}, ValueError, "unknown dataset 'mnits'"),
    ({"schedule.name": "exp"}, ValueError, "schedule.name='exp'"),
    ({"eval_every_steps": 100}, ValueError, "set exactly one of config.eval_every_epochs and config.eval_"),
    ({"input.normalize": "zscore"}, ValueError, "normalize='zscore'; allowed: lecun, standardize, unit"),
    ({"eval.protocols": ("ten_crop",)}, ValueError, "config.eval.protocols must start with 'center'"),
    ({"eval.protocols": ("center", "five_crop")}, ValueError, "unknown evaluation protocol 'five_crop'"),
]


@pytest.mark.parametrize("override,error,message", BAD, ids=[str(b[0]) for b in BAD])
def test_bad_config_is_rejected_before_compiling(override, error, message):
    config = _load("lenet5_mnist")
    config.update_from_flattened_dict(override)  # dotted keys, as on the command line
    with pytest.raises(error, match=re.escape(message)):
        check_config(config)


def test_missing_dataset_names_the_prepare_command(tmp_path):
    from jaxcnn.data import input as input_lib

    with pytest.raises(FileNotFoundError, match="python -m jaxcnn.data.prepare mnist"):
        input_lib.open_split("mnist", "train", data_dir=str(tmp_path))


@pytest.mark.parametrize(
    "flag,message",
    [
        ("--config.batch_size=0", "error: config.batch_size must be a positive number, got 0"),
        ("--config.model.name=resnet9000", "error: unknown model 'resnet9000'"),
        (
            "--config.dataset.data_dir=/nonexistent/tfds",
            "no internet; run: python -m jaxcnn.data.prepare",
        ),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path, flag, message, run_cli):
    proc = run_cli(LENET, f"--workdir={tmp_path}", flag, check=False, timeout=120)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert message in lines[-1] and "Traceback" not in proc.stderr
    assert not (tmp_path / "checkpoints").exists() or not any((tmp_path / "checkpoints").iterdir())


def _seconds_per_step(restart: bool) -> float:
    """The progress bar's rate after a 60-s first step (the compilation) and ten 1-s steps."""
    import io

    from tqdm import tqdm

    from jaxcnn.train import restart_clock

    clock = [0.0]
    bar = tqdm(total=100, file=io.StringIO(), mininterval=0, miniters=1)
    bar._time = lambda: clock[0]
    bar.reset(total=100)  # the bar's clock is the fake one from here on
    clock[0] += 60.0
    bar.update()
    if restart:
        restart_clock(bar)
    for _ in range(10):
        clock[0] += 1.0
        bar.update()
    rate = bar.format_dict["rate"]
    bar.close()
    return 1.0 / rate


def test_the_first_eta_counts_steps_not_the_compilation():
    assert _seconds_per_step(restart=True) == pytest.approx(1.0, rel=0.05)
    assert _seconds_per_step(restart=False) > 1.3  # before: the compilation still weighs in
