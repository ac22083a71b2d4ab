"""One writer per workdir (the lock) and the run's identity (the manifest, checked on resume)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings

import pytest
from helpers import ROOT

from jaxcnn import config_lib, run_dir
from jaxcnn.metric_writer import read_metrics
from jaxcnn.train import train_and_evaluate

LENET_SMOKE = "--config=configs/lenet5_mnist.py:smoke"


def _smoke_config(**overrides):
    config = config_lib.load_config(str(ROOT / "configs" / "lenet5_mnist.py:smoke"))
    config.num_train_steps, config.checkpoint_every_steps = 20, 10
    config.log_every_steps = config.eval_every_steps = 10
    for key, value in overrides.items():
        config[key] = value
    return config


def test_a_second_lock_on_the_workdir_is_refused_naming_the_holder(tmp_path):
    with run_dir.WorkdirLock(str(tmp_path), "training"):
        with pytest.raises(run_dir.WorkdirBusy) as e:
            run_dir.WorkdirLock(str(tmp_path), "evaluation")
        message = str(e.value)
        assert "\n" not in message
        assert f"training PID {os.getpid()} on {socket.gethostname()}" in message
    run_dir.WorkdirLock(str(tmp_path)).close()  # released by close()


def test_a_kill_9_leaves_no_stale_lock(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from jaxcnn import run_dir; "
            f"lock = run_dir.WorkdirLock({str(tmp_path)!r}); print('locked', flush=True); time.sleep(600)",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(run_dir.WorkdirBusy, match=f"PID {holder.pid} "):
            run_dir.WorkdirLock(str(tmp_path))
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    run_dir.WorkdirLock(str(tmp_path)).close()  # the kernel released it with the process


def test_a_workdir_that_is_a_file_is_one_line(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(ValueError, match=f"workdir {path} is a file, not a directory"):
        run_dir.WorkdirLock(str(path))


def test_read_only_lock_without_a_lock_file_locks_nothing_and_creates_nothing(tmp_path, monkeypatch):
    real_open = os.open

    def unwritable(path, flags, *args):
        if flags & os.O_CREAT:
            raise PermissionError(13, "Permission denied")
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", unwritable)
    with pytest.raises(ValueError, match=f"cannot write in workdir {tmp_path}: Permission denied"):
        run_dir.WorkdirLock(str(tmp_path))
    run_dir.WorkdirLock(str(tmp_path), "evaluation", read_only=True).close()
    assert not (tmp_path / ".lock").exists()


def test_free_and_defining_keys():
    for key in ("log_every_steps", "checkpoint.keep", "eval.protocols", "mesh.model", "resume.allow_changes"):
        assert run_dir.is_free(key), key
    for key in ("model.name", "optimizer.base_learning_rate", "num_train_steps", "seed", "batch_size"):
        assert not run_dir.is_free(key), key
    assert not run_dir.is_free("eval.crop_ratio")  # changes what eval/top1_error means


def test_resume_refuses_a_changed_experiment_and_records_an_allowed_one(mnist_split, tmp_path):
    config = _smoke_config()
    train_and_evaluate(config, str(tmp_path))
    manifest = json.loads((tmp_path / "config.json").read_text())
    assert manifest["config"]["optimizer"]["base_learning_rate"] == 0.05  # the smoke variant's constant rate
    assert manifest["devices"]["count"] == 2 and manifest["devices"]["platform"] == "cpu"
    assert manifest["process_count"] == 1 and manifest["jaxcnn_version"]
    assert manifest["started"] and "git_commit" in manifest and manifest["allowed_changes"] == []

    changed = _smoke_config(num_train_steps=30)
    changed.optimizer.base_learning_rate = 0.02
    changed.log_every_steps = 5  # free: not listed
    with pytest.raises(ValueError) as e:
        train_and_evaluate(changed, str(tmp_path))
    assert str(e.value) == (
        f"resuming {tmp_path} with a different experiment (num_train_steps: 20 -> 30; "
        "optimizer.base_learning_rate: 0.05 -> 0.02); use a new --workdir, or allow it with "
        "--config.resume.allow_changes=num_train_steps,optimizer.base_learning_rate"
    )
    assert json.loads((tmp_path / "config.json").read_text()) == manifest  # untouched
    assert max(r["step"] for r in read_metrics(str(tmp_path))) == 20  # nothing trained

    longer = _smoke_config(num_train_steps=30)
    longer.resume.allow_changes = "num_train_steps"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train_and_evaluate(longer, str(tmp_path))
    assert any("allowed changes num_train_steps: 20 -> 30" in str(w.message) for w in caught)
    manifest = json.loads((tmp_path / "config.json").read_text())
    assert manifest["config"]["num_train_steps"] == 30
    [entry] = manifest["allowed_changes"]
    assert entry["changes"] == {"num_train_steps": [20, 30]} and entry["time"]
    assert max(r["step"] for r in read_metrics(str(tmp_path))) == 30


def test_allow_changes_must_name_config_keys(tmp_path):
    config = _smoke_config()
    config.resume.allow_changes = "num_train_steps, optimizer.learning_rate"
    with pytest.raises(ValueError, match=r"allow_changes names \['optimizer.learning_rate'\], which are not"):
        run_dir.check_resume(config, str(tmp_path), resuming=True)
    config.resume.allow_changes = "optimizer"  # a group allows its keys
    assert run_dir.allowed_changes(config) == ("optimizer",)
    run_dir.check_resume(config, str(tmp_path), resuming=True)


def test_manifest_write_is_atomic_and_keeps_history(tmp_path):
    config = _smoke_config()
    run_dir.write_manifest(config, str(tmp_path), None, {})
    first = json.loads((tmp_path / "config.json").read_text())
    run_dir.write_manifest(config, str(tmp_path), first, {"seed": (0, 1)})
    second = json.loads((tmp_path / "config.json").read_text())
    assert second["created"] == first["created"]
    assert second["allowed_changes"][0]["changes"] == {"seed": [0, 1]}
    assert sorted(os.listdir(tmp_path)) == ["config.json"]  # no temporary file left


def test_two_runs_on_one_workdir_the_second_stops_at_once(mnist_split, tmp_path, cli_env, run_cli):
    workdir = tmp_path / "run"
    args = [LENET_SMOKE, "--config.num_train_steps=400", "--config.checkpoint_every_steps=100"]
    first = subprocess.Popen(
        [sys.executable, "-m", "jaxcnn.main", *args, f"--workdir={workdir}"],
        cwd=ROOT,
        env=cli_env(1),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.time() + 300
        while not (workdir / "config.json").exists():
            assert first.poll() is None, first.communicate()[1][-2000:]
            assert time.time() < deadline
            time.sleep(0.05)
        started = time.perf_counter()
        second = run_cli(*args, f"--workdir={workdir}", check=False)
        seconds = time.perf_counter() - started
        evaluation = subprocess.run(
            [sys.executable, "-m", "jaxcnn.evaluate", LENET_SMOKE, f"--workdir={workdir}"],
            cwd=ROOT,
            env=cli_env(1),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert first.poll() is None, "the first run ended before the second was refused; lengthen it"
        out, err = first.communicate(timeout=600)
    finally:
        first.kill()
    print(f"second run refused after {seconds:.1f} s")
    holder = f"is in use by training PID {first.pid} on {socket.gethostname()}"
    for proc in (second, evaluation):
        assert proc.returncode == 1
        last = proc.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: workdir {workdir} {holder}"), last
    assert first.returncode == 0, err[-2000:]
    assert "test error" in out
    records = read_metrics(str(workdir))
    train_steps = [r["step"] for r in records if "train/loss" in r]
    assert train_steps == sorted(set(train_steps)) and train_steps[-1] == 400  # one writer's lines
    assert [p.name for p in sorted((workdir / "checkpoints").iterdir())] == ["200", "300", "400"]


def test_a_key_added_since_the_run_started_is_no_change_at_its_default():
    from configs.base import base_config

    new = run_dir.config_dict(base_config())
    old = json.loads(json.dumps(new))
    del old["resume"]  # a manifest written before jaxcnn had config.resume
    del old["schedule"]["decay_factor"]
    assert run_dir.changed_keys(old, new) == {}
    new["schedule"]["decay_factor"] = 0.5  # not the default: the run did something else
    assert run_dir.changed_keys(old, new) == {"schedule.decay_factor": ("<absent>", 0.5)}
