"""jaxcnn.report on run directories with known numbers: grouping, the statistics, the paper's value,
unfinished and diverged runs left out and listed, report.json, the plots."""

import json
import os
import subprocess
import sys

import pytest
from helpers import ROOT, cli_env

from configs.base import base_config
from jaxcnn import report, run_dir, runs


def _config(model, seed):
    c = base_config()
    c.model.name, c.dataset.name, c.seed = model, "mnist", seed
    c.input.image_size, c.batch_size, c.num_train_steps = 32, 600, 200  # MNIST: 100 steps per epoch
    c.eval_every_steps, c.checkpoint_every_steps = 100, 100
    return run_dir.config_dict(c)


def _write_run(root, name, config, records, status=None):
    workdir = os.path.join(root, *name.split("/"))
    os.makedirs(workdir)
    with open(os.path.join(workdir, "config.json"), "w") as f:
        json.dump({"config": config, "started": "2025-01-01T00:00:00+00:00"}, f)
    with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
        f.writelines(json.dumps(r) + "\n" for r in records)
    if status:
        runs.write_status(workdir, status)


def _records(top1, top5, last=200, loss=1.0, train_error=0.5):
    out = []
    for step in range(50, last + 1, 50):
        out.append(
            {
                "step": step,
                "train/loss": loss / step * 50,
                "train/top1_error": train_error,
                "train/seconds": 1.5,
            }
        )
        if step % 100 == 0:
            done = step == 200
            out.append(
                {
                    "step": step,
                    "eval/top1_error": top1 if done else 2 * top1,
                    "eval/top5_error": top5 if done else 2 * top5,
                    "eval/seconds": 0.5,
                }
            )
    return out


@pytest.fixture
def sweep_dir(tmp_path):
    """lenet5: three finished seeds (1.0, 1.2, 1.4 % top-1) and one diverged (a NaN loss);
    lenet5_modern: two finished (2.0, 3.0 %), one unfinished, one whose trainer stopped on a NaN."""
    root = str(tmp_path / "sweep")
    for seed, top1 in enumerate([0.010, 0.012, 0.014]):
        _write_run(root, f"model.name=lenet5/seed={seed}", _config("lenet5", seed), _records(top1, top1 / 10))
    nan = _records(0.5, 0.1, last=100)
    nan[0]["train/loss"] = float("nan")
    _write_run(root, "model.name=lenet5/seed=3", _config("lenet5", 3), nan)
    for seed, top1 in enumerate([0.02, 0.03]):
        _write_run(
            root,
            f"model.name=lenet5_modern/seed={seed}",
            _config("lenet5_modern", seed),
            _records(top1, 0.001),
            status={"outcome": "finished", "wall_seconds": 100.0 + 10 * seed},
        )
    _write_run(
        root, "model.name=lenet5_modern/seed=2", _config("lenet5_modern", 2), _records(0.5, 0.1, last=150)
    )
    _write_run(
        root,
        "model.name=lenet5_modern/seed=3",
        _config("lenet5_modern", 3),
        _records(0.5, 0.1, last=100),
        status={"outcome": "diverged", "last_line": "error: train/loss is nan at step 101; ..."},
    )
    with open(os.path.join(root, "sweep.json"), "w") as f:
        json.dump({"sweep": {"model.name": ["lenet5", "lenet5_modern"]}}, f)
    return root


def test_report_aggregates_known_numbers(sweep_dir):
    result = report.report(sweep_dir)
    assert result["group_keys"] == ["model.name"]
    lenet, modern = result["combinations"]
    assert lenet["label"] == "model.name=lenet5" and lenet["n"] == 3 and lenet["n_runs"] == 4
    assert lenet["top1_error"]["mean"] == pytest.approx(1.2)
    assert lenet["top1_error"]["std"] == pytest.approx(0.2)  # the n-1 sample std
    assert (lenet["top1_error"]["min"], lenet["top1_error"]["max"]) == pytest.approx((1.0, 1.4))
    assert lenet["top5_error"]["mean"] == pytest.approx(0.12)
    assert lenet["reported"] == {"top1": 0.95} and lenet["top1_vs_paper"] == pytest.approx(0.25)
    assert lenet["steps"] == [200]
    assert lenet["train_seconds"] == pytest.approx(4 * 1.5) and lenet["eval_seconds"] == pytest.approx(
        2 * 0.5
    )
    assert list(lenet["not_averaged"]) == ["model.name=lenet5/seed=3"]
    assert lenet["not_averaged"]["model.name=lenet5/seed=3"].startswith("diverged: train/loss is not finite")

    assert modern["n"] == 2 and modern["top1_error"]["mean"] == pytest.approx(2.5)
    assert modern["top1_error"]["std"] == pytest.approx(0.70710678)
    assert sorted(modern["not_averaged"]) == [
        "model.name=lenet5_modern/seed=2",
        "model.name=lenet5_modern/seed=3",
    ]
    assert modern["not_averaged"]["model.name=lenet5_modern/seed=2"] == "unfinished: step 150 of 200"
    assert modern["not_averaged"]["model.name=lenet5_modern/seed=3"].startswith("diverged: error: train/loss")

    states = {r["name"]: r["state"] for r in result["runs"]}
    assert list(states.values()).count("finished") == 5 and states["model.name=lenet5/seed=3"] == "diverged"
    assert all(r["steps_per_epoch"] == 100 for r in result["runs"])
    assert json.load(open(os.path.join(sweep_dir, "report.json"))) == result

    md = open(os.path.join(sweep_dir, "report.md")).read()
    assert (
        "| model.name=lenet5 | 3 of 4 | 1.20 ± 0.20 (1.00, 1.40) | 0.12 ± 0.02 (0.10, 0.14) "
        "| 0.95 (+0.25) | 200 |" in md
    )
    assert "| model.name=lenet5_modern | 2 of 4 | 2.50 ± 0.71 (2.00, 3.00) |" in md
    assert modern["wall_seconds"] == pytest.approx(105.0) and lenet["wall_seconds"] is None
    assert md.count(" | 6 s | 1 s | 105 s |") == 1 and md.count(" | 6 s | 1 s | - |") == 1
    assert "- `model.name=lenet5_modern/seed=2`: unfinished: step 150 of 200" in md

    trials = os.listdir(os.path.join(sweep_dir, "hparams", "model.name=lenet5_modern"))
    assert sorted(trials) == ["seed=0", "seed=1"]  # the finished runs only
    assert result["hparams"] == "hparams"
    for name in ("train_loss.png", "train_error.png", "eval_error.png"):
        path = os.path.join(sweep_dir, "plots", name)
        assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
        assert f"](plots/{name})" in md


def test_train_seconds_of_runs_before_the_field():
    # 100 steps of 32 images at 320 img/s, then 50 at 160: 10 s + 10 s.
    records = [
        {"step": 100, "train/loss": 1.0, "train/images_per_second": 320.0},
        {"step": 100, "eval/top1_error": 0.5},
        {"step": 150, "train/loss": 1.0, "train/images_per_second": 160.0},
    ]
    assert report.train_seconds(records, 32) == pytest.approx(20.0)


def test_group_keys_ignore_the_seed_and_free_keys():
    a = {"flat": {"seed": 0, "model.name": "x", "dataset.data_dir": "/a", "batch_size": 8}}
    b = {"flat": {"seed": 1, "model.name": "y", "dataset.data_dir": "/b", "batch_size": 16}}
    assert report.group_keys([a, b], order=["model.name"]) == ["model.name", "batch_size"]
    assert report.group_keys([a, dict(a)]) == []


def test_a_directory_without_runs_is_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "jaxcnn.report", str(tmp_path)],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: no runs under {tmp_path} (no directory with a config.json)"


def test_steps_to_a_training_error_per_combination(tmp_path):
    # relu seeds cross 25% at steps 100 and 150 and 15% at 200 (one seed only); tanh never does.
    root = str(tmp_path / "fig1")
    curves = {
        ("relu", 0): [0.6, 0.2, 0.2, 0.1],
        ("relu", 1): [0.6, 0.3, 0.25, 0.2],
        ("tanh", 0): [0.9, 0.8, 0.7, 0.6],
    }
    for (act, seed), errors in curves.items():
        config = _config("lenet5", seed)
        config["model"]["act"] = act
        records = [r for r in _records(0.1, 0.01) if "train/loss" not in r]
        records += [
            {"step": 50 * (i + 1), "train/loss": 1.0, "train/top1_error": e} for i, e in enumerate(errors)
        ]
        _write_run(root, f"model.act={act}/seed={seed}", config, sorted(records, key=lambda r: r["step"]))
    result = report.report(root, train_error_below=(25, 15))
    relu, tanh = result["combinations"]
    assert relu["label"] == "model.act=relu"
    assert relu["steps_to_train_error"]["25"]["steps"]["values"] == [100.0, 150.0]
    assert relu["steps_to_train_error"]["15"] == {
        "reached": 1,
        "of": 2,
        "steps": {"mean": 200.0, "std": 0.0, "min": 200.0, "max": 200.0, "values": [200.0]},
    }
    assert tanh["steps_to_train_error"]["25"] == {"reached": 0, "of": 1, "steps": None}
    md = open(os.path.join(root, "report.md")).read()
    assert "| model.act=relu | 125 ± 35 (100, 150) | 200 ± 0 (200, 200), 1 of 2 |" in md
    assert "| model.act=tanh | not reached (0 of 1) | not reached (0 of 1) |" in md
    assert report.steps_to_train_error([{"step": 5, "train/top1_error": 0.25}], 25) == 5  # at most


def test_the_paper_value_follows_the_distortions():
    config = _config("lenet5", 0)
    assert report._reported(config) == {"top1": 0.95}
    config["input"]["train_augment"] = "lecun_distortions"
    assert report._reported(config) == {"top1": 0.8}


def test_bad_thresholds_are_one_line(tmp_path):
    assert report.parse_thresholds("25,15") == (25.0, 15.0)
    for bad in ("25,x", "0", "150"):
        with pytest.raises(ValueError, match=f"--train_error_below={bad}: '.*' is not a percentage in"):
            report.parse_thresholds(bad)
    proc = subprocess.run(
        [sys.executable, "-m", "jaxcnn.report", str(tmp_path), "--train_error_below=abc"],
        cwd=ROOT,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1 and proc.stderr.strip().startswith("error: --train_error_below=abc: 'abc'")


def test_rows_follow_the_sweeps_order_of_values():
    rows = [
        {"values": {"input.train_augment": "lecun_distortions", "optimizer.base_learning_rate": 0.08}},
        {"values": {"input.train_augment": "none", "optimizer.base_learning_rate": 0.08}},
        {"values": {"input.train_augment": "none", "optimizer.base_learning_rate": 0.02}},
        {"values": {"input.train_augment": "other", "optimizer.base_learning_rate": 0.02}},
    ]
    swept = {
        "input.train_augment": ["none", "lecun_distortions"],
        "optimizer.base_learning_rate": ["0.02", "0.08"],
    }
    ordered = report.sweep_sort(rows, swept)
    assert [list(r["values"].values()) for r in ordered] == [
        ["none", 0.02],
        ["none", 0.08],
        ["lecun_distortions", 0.08],
        ["other", 0.02],  # a value the sweep did not list: last
    ]
    assert report.sweep_sort(rows, {}) == rows
    assert report._matches("true", True) and report._matches("1e-4", 0.0001) and not report._matches("x", 1.0)
