"""Runs that are preempted, killed, corrupted, moved or spread over processes: nothing is lost.

Every run here is a subprocess of `python -m jaxcnn.main` under a timeout, like a real job.
"""

import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest
from helpers import ROOT, cli_env

from jaxcnn import config_lib
from jaxcnn.metric_writer import read_metrics
from jaxcnn.train import train_and_evaluate

LENET = "--config=configs/lenet5_mnist.py"


def _args(steps, every, log=10):
    return [
        LENET,
        f"--config.num_train_steps={steps}",
        "--config.checkpoint_every_epochs=0",  # the recipe's interval is in epochs; these are steps
        f"--config.checkpoint_every_steps={every}",
        f"--config.log_every_steps={log}",  # evaluated once, at the end (before the recipe's 5 epochs)
        "--config.checkpoint.keep=100",
    ]


def _state(workdir, step):
    return ocp.StandardCheckpointer().restore(workdir / "checkpoints" / str(step) / "state")


def _assert_bitwise_equal(a, b):
    jax.tree.map(np.testing.assert_array_equal, a, b)


def _start(args, workdir, devices=1):
    return subprocess.Popen(
        [sys.executable, "-m", "jaxcnn.main", *args, f"--workdir={workdir}"],
        cwd=ROOT,
        env=cli_env(devices),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path, proc, timeout=300):
    deadline = time.time() + timeout
    while not path.is_dir():
        assert proc.poll() is None, f"the run ended early: {proc.communicate()[1][-2000:]}"
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _train_losses(workdir, after=0):
    return {
        r["step"]: r["train/loss"]
        for r in read_metrics(str(workdir))
        if "train/loss" in r and r["step"] > after
    }


def test_sigterm_finishes_the_step_saves_and_exits_0(mnist_split, tmp_path, run_cli):
    args = _args(steps=600, every=200)
    run_cli(*args, f"--workdir={tmp_path / 'straight'}")
    proc = _start(args, tmp_path / "preempted")
    _wait_for(tmp_path / "preempted" / "checkpoints" / "200", proc)
    time.sleep(random.uniform(0.2, 1.0))
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-2000:]
    assert "preempted: saved the checkpoint of step" in out
    saved = int(out.split("checkpoint of step ")[1].split()[0])
    assert 200 < saved < 600 and (tmp_path / "preempted" / "checkpoints" / str(saved)).is_dir()
    proc = run_cli(*args, f"--workdir={tmp_path / 'preempted'}")
    assert f"resumed from the checkpoint of step {saved}" in proc.stdout
    _assert_bitwise_equal(_state(tmp_path / "straight", 600), _state(tmp_path / "preempted", 600))


@pytest.mark.slow
def test_five_kill_9s_then_reruns_end_bitwise_equal(mnist_split, tmp_path, run_cli):
    args = _args(steps=3000, every=250, log=50)
    run_cli(*args, f"--workdir={tmp_path / 'straight'}")
    killed = tmp_path / "killed"
    for kill in range(5):
        proc = _start(args, killed)
        _wait_for(killed / "checkpoints" / str(250 * (2 * kill + 1)), proc)
        time.sleep(random.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        assert proc.returncode == -signal.SIGKILL
    assert not (killed / "checkpoints" / "3000").exists(), "a kill came after the end"
    run_cli(*args, f"--workdir={killed}")
    _assert_bitwise_equal(_state(tmp_path / "straight", 3000), _state(killed, 3000))
    drop = lambda rs: [{k: v for k, v in r.items() if "second" not in k} for r in rs]  # wall clock
    assert drop(read_metrics(str(tmp_path / "straight"))) == drop(read_metrics(str(killed)))


def test_corrupt_latest_checkpoint_warns_and_falls_back(mnist_split, tmp_path):
    config = config_lib.load_config(str(ROOT / "configs" / "lenet5_mnist.py"))
    config.num_train_steps, config.checkpoint_every_steps = 60, 20
    config.log_every_steps = config.eval_every_steps = 20
    config.checkpoint_every_epochs = config.eval_every_epochs = 0  # the intervals above are steps
    config.schedule.name = "constant"  # the same rates whatever num_train_steps says
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    train_and_evaluate(config, str(straight))
    config.num_train_steps = 40
    train_and_evaluate(config, str(broken))
    for f in (broken / "checkpoints" / "40" / "state").rglob("*"):
        if f.is_file() and f.stat().st_size > 0:
            f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])  # a half-written disk block
    config.num_train_steps = 60
    config.resume.allow_changes = "num_train_steps"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_and_evaluate(config, str(broken))
    messages = [str(w.message) for w in caught if "unreadable" in str(w.message)]
    assert messages and f"{broken}/checkpoints/40 is unreadable" in messages[0]
    assert (broken / "corrupt_checkpoints" / "40").is_dir()  # set aside, not deleted
    _assert_bitwise_equal(_state(straight, 60), _state(broken, 60))


def test_nan_loss_stops_naming_the_step_and_keeps_the_good_checkpoint(mnist_split, tmp_path, run_cli):
    proc = run_cli(
        "--config=configs/mnist_convnet.py",
        f"--workdir={tmp_path}",
        "--config.num_train_steps=200",
        "--config.checkpoint_every_epochs=0",
        "--config.checkpoint_every_steps=2",
        "--config.log_every_steps=5",
        "--config.optimizer.base_learning_rate=1e8",
        check=False,
    )
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: train/loss is nan at step ") or last.startswith(
        "error: train/loss is inf"
    ), last
    bad_step = int(last.split(" at step ")[1].split(";")[0])
    steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert steps and max(steps) < bad_step
    state = _state(tmp_path, max(steps))
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(state["params"]))


def test_saved_on_8_resumed_on_4_then_1_gives_the_same_losses(mnist_split, tmp_path, run_cli):
    args = _args(steps=90, every=30)
    run_cli(*args, f"--workdir={tmp_path / 'eight'}", devices=8)
    reference = _train_losses(tmp_path / "eight")

    def resume(source, step, name, devices):
        target = tmp_path / name
        (target / "checkpoints").mkdir(parents=True)
        shutil.copytree(source / "checkpoints" / str(step), target / "checkpoints" / str(step))
        shutil.copy(source / "metrics.jsonl", target / "metrics.jsonl")
        run_cli(*args, f"--workdir={target}", devices=devices)
        return target

    four = resume(tmp_path / "eight", 30, "four", devices=4)
    one = resume(four, 60, "one", devices=1)
    for run, after in ((four, 30), (one, 60)):
        losses = _train_losses(run, after)
        assert losses.keys() == {s: 0 for s in reference if s > after}.keys()
        for step, loss in losses.items():
            assert loss == pytest.approx(reference[step], rel=1e-6), (run.name, step)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one_process(mnist_split, tmp_path, run_cli):
    args = _args(steps=100, every=50)
    run_cli(*args, f"--workdir={tmp_path / 'one'}", devices=2)
    address = f"127.0.0.1:{_free_port()}"
    procs = [
        _start(
            [
                *args,
                f"--config.distributed.coordinator_address={address}",
                "--config.distributed.num_processes=2",
                f"--config.distributed.process_id={i}",
            ],
            tmp_path / "two",
            devices=1,
        )
        for i in range(2)
    ]
    try:
        results = [p.communicate(timeout=400) for p in procs]
    finally:
        for p in procs:
            p.kill()
    for p, (_, err) in zip(procs, results):
        assert p.returncode == 0, err[-3000:]
    one, two = _train_losses(tmp_path / "one"), _train_losses(tmp_path / "two")
    assert one.keys() == two.keys() and len(one) == 10
    for step in one:
        assert two[step] == pytest.approx(one[step], rel=1e-6), step
    assert "test error" in results[0][0]


def test_ctrl_c_finishes_the_step_saves_exits_130_and_a_torn_log_resumes(mnist_split, tmp_path, run_cli):
    args = [LENET + ":smoke", "--config.num_train_steps=400", "--config.checkpoint_every_steps=100"]
    proc = _start(args, tmp_path)
    _wait_for(tmp_path / "checkpoints" / "100", proc)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends; today a traceback and no checkpoint
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Ctrl-C: finishing this step and saving" in err and "Traceback" not in err
    assert "interrupted (Ctrl-C): saved the checkpoint of step" in out
    saved = int(out.split("checkpoint of step ")[1].split()[0])
    assert 100 <= saved < 400 and (tmp_path / "checkpoints" / str(saved)).is_dir()
    # A kill during a write leaves half a line; today every resume stops on `Unterminated string`.
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 999, "train/lo')
    proc = run_cli(*args, f"--workdir={tmp_path}")
    assert f"{tmp_path / 'metrics.jsonl'}: dropped a half-written last line" in proc.stderr
    assert f"resumed from the checkpoint of step {saved}" in proc.stdout
    assert [r["step"] for r in read_metrics(str(tmp_path)) if "train/loss" in r][-1] == 400


def test_a_second_ctrl_c_restores_the_default_action():
    from jaxcnn.train import _PreemptionNotice

    notice = _PreemptionNotice()
    try:
        signal.raise_signal(signal.SIGINT)  # the first: a flag, no KeyboardInterrupt
        assert notice(1) and notice.interrupted
        assert signal.getsignal(signal.SIGINT) is signal.SIG_DFL  # the second ends the process
    finally:
        notice.close()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def _mnist_copy(tmp_path):
    source = next((Path.home() / "tensorflow_datasets" / "mnist").iterdir())
    target = tmp_path / "data" / "mnist" / source.name
    shutil.copytree(source, target)
    return str(tmp_path / "data"), next(target.glob("mnist-test.tfrecord-*"))


def _lenet_smoke(data_dir, steps=20):
    config = config_lib.load_config(str(ROOT / "configs" / "lenet5_mnist.py:smoke"))
    config.dataset.data_dir = data_dir
    config.num_train_steps = steps
    config.checkpoint_every_steps = config.eval_every_steps = config.log_every_steps = 10
    return config


def test_a_truncated_eval_shard_stops_the_run_before_the_first_step(mnist_split, tmp_path):
    data_dir, test_file = _mnist_copy(tmp_path)
    test_file.write_bytes(test_file.read_bytes()[: test_file.stat().st_size // 2])  # a copy that stopped
    with pytest.raises(ValueError, match=r"mnist split 'test' is truncated: its 1 file\(s\)"):
        train_and_evaluate(_lenet_smoke(data_dir), str(tmp_path / "run"))
    assert not (tmp_path / "run" / "checkpoints").exists()  # nothing was trained to lose


def test_a_failed_evaluation_keeps_the_checkpoint_of_its_step(mnist_split, tmp_path):
    data_dir, test_file = _mnist_copy(tmp_path)
    good = test_file.read_bytes()
    middle = len(good) // 2
    test_file.write_bytes(good[:middle] + bytes(64) + good[middle + 64 :])  # a damaged eval record
    run = tmp_path / "run"
    with pytest.raises(ValueError, match="cannot read or decode a record of 'mnist' split 'test'"):
        train_and_evaluate(_lenet_smoke(data_dir), str(run))
    assert (run / "checkpoints" / "10").is_dir()  # saved before the evaluation that failed
    test_file.write_bytes(good)
    result = train_and_evaluate(_lenet_smoke(data_dir), str(run))  # resumes at 10, evaluates it first
    evals = [r["step"] for r in read_metrics(str(run)) if "eval/top1_error" in r]
    assert evals == [10, 20] and result["eval/num_examples"] == 10_000

    # jaxcnn.evaluate where it cannot write: the numbers are printed, then one line says so.
    (run / "eval_results.json").mkdir()
    proc = subprocess.run(
        [sys.executable, "-m", "jaxcnn.evaluate", LENET + ":smoke", f"--workdir={run}"]
        + [f"--config.dataset.data_dir={data_dir}"],
        cwd=ROOT,
        env=cli_env(1),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1
    assert "step 20: center top-1 error" in proc.stdout
    assert (
        proc.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: could not write the results above to {run}/eval_results.json")
    )


def test_a_preemption_notice_during_evaluation_abandons_it_and_the_rerun_evaluates_first(
    mnist_split, tmp_path, monkeypatch
):
    from jaxcnn import evaluate
    from jaxcnn.train import Preempted

    config = _lenet_smoke("", steps=20)
    config.eval_every_steps, config.checkpoint_every_steps = 15, 10  # step 15 is no checkpoint step
    config.eval_batch_size = 1000  # 10 batches
    read = []
    eval_batches = evaluate.input_lib.eval_batches

    def notice_after_two(*args, **kwargs):
        for i, batch in enumerate(eval_batches(*args, **kwargs)):
            read.append(i)
            if i == 1:
                signal.raise_signal(signal.SIGTERM)  # the scheduler's notice, mid-evaluation
            yield batch

    monkeypatch.setattr(evaluate.input_lib, "eval_batches", notice_after_two)
    with pytest.raises(Preempted, match="preempted: saved the checkpoint of step 15"):
        train_and_evaluate(config, str(tmp_path))
    assert len(read) == 2  # the batch read with the notice was not evaluated, nor the eight after it
    assert (tmp_path / "checkpoints" / "15").is_dir()
    assert not any("eval/top1_error" in r for r in read_metrics(str(tmp_path)))
    monkeypatch.undo()
    result = train_and_evaluate(config, str(tmp_path))  # evaluates step 15 first, then trains on
    evals = [r["step"] for r in read_metrics(str(tmp_path)) if "eval/top1_error" in r]
    assert evals == [15, 20] and result["eval/num_examples"] == 10_000
