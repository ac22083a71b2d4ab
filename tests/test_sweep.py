"""jaxcnn.sweep: expansion and naming, --dry_run, --jobs_file, one-line errors, resume and skip."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from helpers import ROOT, cli_env

from jaxcnn import config_lib, run_dir, runs, sweep

SMOKE = "configs/lenet5_mnist.py:smoke"


@pytest.fixture(autouse=True)
def _in_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # the config paths are relative to the repository root


def _args(workdir, *extra, seeds=2):
    return ["--config=" + SMOKE, f"--workdir={workdir}", f"--seeds={seeds}", *extra]


def test_expansion_names_and_commands(tmp_path):
    args = sweep.parse_args(
        _args(
            tmp_path,
            "--sweep=model.name=lenet5,lenet5_modern",
            "--sweep=optimizer.base_learning_rate=0.01,0.02",
        )
        + ["--config.batch_size=64"]
    )
    planned = sweep.plan(args)
    assert len(planned) == 2 * 2 * 2
    names = [r.name for r in planned]
    assert names[0] == "model.name=lenet5/optimizer.base_learning_rate=0.01/seed=0"
    assert names[-1] == "model.name=lenet5_modern/optimizer.base_learning_rate=0.02/seed=1"
    assert len(set(names)) == 8
    last = planned[-1]
    assert last.workdir == os.path.join(tmp_path, *last.name.split("/"))
    assert last.config.model.name == "lenet5_modern" and last.config.seed == 1
    assert last.config.optimizer.base_learning_rate == 0.02 and last.config.batch_size == 64
    assert last.command == [
        "python",
        "-m",
        "jaxcnn.main",
        f"--config={SMOKE}",
        f"--workdir={last.workdir}",
        "--config.batch_size=64",
        "--config.model.name=lenet5_modern",
        "--config.optimizer.base_learning_rate=0.02",
        "--config.seed=1",
    ]
    # The command line builds the same config as the plan: what a jobs file runs is what was checked.
    config, _ = config_lib.from_command_line(["main", *last.command[3:]])
    assert run_dir.config_dict(config) == run_dir.config_dict(last.config)


def test_seeds_alone(tmp_path):
    planned = sweep.plan(sweep.parse_args(_args(tmp_path, seeds=3)))
    assert [r.name for r in planned] == ["seed=0", "seed=1", "seed=2"]
    assert [r.config.seed for r in planned] == [0, 1, 2] and planned[0].config.model.name == "lenet5"


def test_sweep_values_with_brackets_and_unsafe_characters(tmp_path):
    key, values = sweep.parse_sweep("schedule.boundaries_epochs=(10,20),(15,25)")
    assert key == "schedule.boundaries_epochs" and values == ["(10,20)", "(15,25)"]
    assert sweep.folder_name(key, values[0]) == "schedule.boundaries_epochs=_10_20_"
    planned = sweep.plan(sweep.parse_args(_args(tmp_path, "--sweep=" + f"{key}=(10,20),(15,25)", seeds=1)))
    assert [tuple(r.config.schedule.boundaries_epochs) for r in planned] == [(10, 20), (15, 25)]


def test_dry_run_prints_every_command_and_runs_nothing(tmp_path, capsys):
    assert sweep.main(_args(tmp_path / "d", "--sweep=model.name=lenet5,lenet5_modern", "--dry_run")) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4 and all(line.startswith("python -m jaxcnn.main --config=") for line in lines)
    assert f"--workdir={tmp_path}/d/model.name=lenet5_modern/seed=1" in lines[3]
    assert not (tmp_path / "d").exists()


def test_jobs_file_one_command_per_line(tmp_path):
    jobs = tmp_path / "jobs.txt"
    sweep.main(
        _args(tmp_path / "d", "--sweep=model.name=lenet5,lenet5_modern", f"--jobs_file={jobs}", seeds=3)
    )
    lines = jobs.read_text().splitlines()
    assert len(lines) == 6 and len(set(lines)) == 6
    assert all("--config.seed=" in line and "jaxcnn.main" in line for line in lines)
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (
            ["--sweep=model.nme=lenet5"],
            "unknown config key config.model.nme; did you mean config.model.name?",
        ),
        (["--sweep=model.name=lenet5,lenet9"], "model.name=lenet9: unknown model 'lenet9'"),
        (["--sweep=batch_size=32,abc"], "--config.batch_size=abc: expected an int like 32"),
        (["--sweep=optimizer.name=sgd,adamx"], "optimizer.name=adamx: config.optimizer.name='adamx'"),
        (["--sweep=seed=1,2"], "seeds are --seeds=N"),
        (["--sweep=model.name"], "expected KEY=v1,v2"),
        (["--sweep=model.name=a,a"], "values must be non-empty and distinct"),
        (["--sweep=batch_size=8", "--config.batch_size=4"], "both swept (--sweep) and fixed"),
        (["--sweep=batch_size=8", "--sweep=batch_size=16"], "names batch_size twice"),
        (["--frobnicate=1"], "unknown flag --frobnicate"),
    ],
)
def test_bad_keys_and_values_fail_before_anything_runs(tmp_path, extra, message):
    with pytest.raises(ValueError) as error:
        sweep.main(_args(tmp_path / "d", *extra))
    assert message in str(error.value) and "\n" not in str(error.value)
    assert not (tmp_path / "d").exists()


def test_bad_value_is_one_line_on_the_command_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "jaxcnn.sweep", *_args(tmp_path / "d", "--sweep=model.name=lenet5,lenet9")],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.strip().count("\n") == 0 and proc.stderr.startswith("error: model.name=lenet9: ")


class FakeTrainer:
    """Stands in for `python -m jaxcnn.main`: writes the manifest and metrics a run of `steps` would."""

    def __init__(self, steps=None, fail_with=None):
        self.calls, self.steps, self.fail_with = [], steps, fail_with

    def __call__(self, argv, stdout=None, **kwargs):  # noqa: ARG002
        config, rest = config_lib.from_command_line(["main", *argv[3:]])
        workdir = rest[1].removeprefix("--workdir=")
        self.calls.append(workdir)
        run_dir.write_manifest(config, workdir, None, {})
        if self.fail_with:
            stdout.write(self.fail_with + "\n")
            return subprocess.CompletedProcess(argv, 1)
        last = self.steps or config.num_train_steps
        with open(os.path.join(workdir, "metrics.jsonl"), "a") as f:
            f.write(json.dumps({"step": last, "train/loss": 0.5, "train/seconds": 2.0}) + "\n")
            f.write(json.dumps({"step": last, "eval/top1_error": 0.1 + config.seed / 100}) + "\n")
        return subprocess.CompletedProcess(argv, 0)


def _snapshot(root):
    return {
        p: os.stat(os.path.join(p, "metrics.jsonl")).st_mtime_ns
        for p in runs.find_runs(str(root))
        if os.path.exists(os.path.join(p, "metrics.jsonl"))
    }


def test_rerun_skips_finished_runs_and_starts_no_process(tmp_path, monkeypatch, capsys):
    trainer = FakeTrainer()
    monkeypatch.setattr(sweep, "_start", trainer)
    argv = _args(tmp_path, "--sweep=model.name=lenet5,lenet5_modern")
    assert sweep.main(argv) == 0
    assert len(trainer.calls) == 4
    status = runs.read_status(str(tmp_path / "model.name=lenet5" / "seed=1"))
    assert status["outcome"] == "finished" and status["wall_seconds"] >= 0
    assert json.loads((tmp_path / "sweep.json").read_text())["sweep"] == {
        "model.name": ["lenet5", "lenet5_modern"]
    }
    before = _snapshot(tmp_path)
    assert len(before) == 4
    capsys.readouterr()

    assert sweep.main(argv) == 0
    assert len(trainer.calls) == 4  # no process started
    assert _snapshot(tmp_path) == before
    out = capsys.readouterr().out
    assert out.count("skip ") == 4 and "4 skipped" in out
    # --dry_run and --jobs_file leave finished runs out too.
    sweep.main([*argv, "--dry_run"])
    assert "python -m" not in capsys.readouterr().out


def test_rerun_resumes_unfinished_skips_diverged_and_locked(tmp_path, monkeypatch, capsys):
    argv = _args(tmp_path, "--sweep=model.name=lenet5,lenet5_modern")
    monkeypatch.setattr(sweep, "_start", FakeTrainer(steps=20))  # exits 0 before the last step (SIGTERM)
    sweep.main(argv)
    assert runs.read_status(str(tmp_path / "model.name=lenet5" / "seed=1"))["outcome"] == "unfinished"
    diverged = str(tmp_path / "model.name=lenet5" / "seed=0")
    monkeypatch.setattr(sweep, "_start", FakeTrainer(fail_with="error: train/loss is nan at step 7; x"))
    sweep.main([*argv[:-1], "--seeds=1", "--sweep=model.name=lenet5"])
    assert runs.read_status(diverged)["outcome"] == "diverged"

    trainer = FakeTrainer()
    monkeypatch.setattr(sweep, "_start", trainer)
    locked = str(tmp_path / "model.name=lenet5_modern" / "seed=0")
    with run_dir.WorkdirLock(locked, "training"):  # another worker is training it
        capsys.readouterr()
        sweep.main(argv)
    out = capsys.readouterr().out
    assert sorted(trainer.calls) == [
        str(tmp_path / "model.name=lenet5" / "seed=1"),
        str(tmp_path / "model.name=lenet5_modern" / "seed=1"),
    ]
    assert "skip model.name=lenet5/seed=0: diverged" in out
    assert "skip model.name=lenet5_modern/seed=0: running" in out


CHILD = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *a: (print("saved and stopped", flush=True), sys.exit(0)))
print("ready", flush=True)
time.sleep(120)
sys.exit(3)
"""


def test_sigterm_reaches_the_run_and_stops_the_sweep(tmp_path, monkeypatch):
    log = tmp_path / "log"
    previous = signal.signal(signal.SIGTERM, sweep._on_sigterm)
    monkeypatch.setattr(sweep._Child, "stop", False)

    def preempt():  # the scheduler's notice, once the child is up
        while "ready" not in (log.read_text() if log.exists() else ""):
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=preempt, daemon=True).start()
    try:
        with open(log, "w") as out:
            proc = sweep._start([sys.executable, "-c", CHILD], stdout=out, stderr=subprocess.STDOUT)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert proc.returncode == 0 and log.read_text().split() == ["ready", "saved", "and", "stopped"]
    assert sweep._Child.stop


def test_a_run_of_another_experiment_is_refused_up_front(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "_start", FakeTrainer(steps=20))
    sweep.main(_args(tmp_path, "--sweep=model.name=lenet5", seeds=1))
    os.makedirs(tmp_path / "model.name=lenet5" / "seed=0" / "checkpoints" / "20")
    with pytest.raises(ValueError, match=r"different experiment \(batch_size: 32 -> 64\)"):
        sweep.main(_args(tmp_path, "--sweep=model.name=lenet5", "--config.batch_size=64", seeds=1))


@pytest.mark.slow
def test_real_sweep_then_report_then_rerun_trains_nothing(tmp_path):
    """The issue's command: two variants x two seeds of the LeNet-5 smoke recipe, the report, a rerun."""

    def cli(module, *args):
        proc = subprocess.run(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=1500,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        return proc.stdout

    d = str(tmp_path / "d")
    argv = [f"--config={SMOKE}", f"--workdir={d}", "--sweep=model.name=lenet5,lenet5_modern", "--seeds=2"]
    out = cli("jaxcnn.sweep", *argv)
    assert "4 runs" in out and "4 trained" in out
    cli("jaxcnn.report", d)
    report = open(os.path.join(d, "report.md")).read()
    rows = [line for line in report.splitlines() if line.startswith("| model.name=")]
    assert len(rows) == 2 and all(row.split("|")[2].strip() == "2" for row in rows)
    assert all("±" in row for row in rows)
    pngs = [p for p in os.listdir(os.path.join(d, "plots")) if p.endswith(".png")]
    assert len(pngs) >= 2
    before = _snapshot(d)
    out = cli("jaxcnn.sweep", *argv)
    assert "0 trained" in out and "4 skipped" in out
    assert _snapshot(d) == before
