"""The command lines (jaxcnn.main, jaxcnn.evaluate): a bad --config ends in one `error:` line."""

import re
import subprocess
import sys

import pytest

LENET = "--config=configs/lenet5_mnist.py"


def _one_error_line(proc) -> str:
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    return lines[0]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--config=configs/lenet5_mnsit.py"], "config file 'configs/lenet5_mnsit.py' does not exist"),
        (
            [LENET, "--config.optimizer.base_learnig_rate=0.1"],
            "unknown config key config.optimizer.base_learnig_rate; "
            "did you mean config.optimizer.base_learning_rate?",
        ),
        ([LENET, "--config.batch_size=many"], "--config.batch_size=many: expected an int like 32"),
        (["--config=configs/lenet5_mnist.py:smok"], "unknown config argument 'smok'; allowed: smoke"),
        (["--workdir=/tmp/unused"], "--config=configs/NAME.py[:ARG] is required"),
    ],
)
def test_a_bad_config_is_one_line(tmp_path, args, message, run_cli):
    proc = run_cli(*args, f"--workdir={tmp_path}", check=False, timeout=120)
    assert message in _one_error_line(proc)
    assert not any(tmp_path.iterdir())  # nothing written


def test_a_config_file_with_a_syntax_error_names_its_line(tmp_path, run_cli):
    bad = tmp_path / "recipe.py"
    bad.write_text("import os\n\n\ndef get_config(arg=None):\n    return dict(\n")
    proc = run_cli(f"--config={bad}", f"--workdir={tmp_path / 'run'}", check=False, timeout=120)
    line = _one_error_line(proc)
    assert f"config file {bad} line 5" in line and "never closed" in line


def test_evaluate_reads_configs_the_same_way(tmp_path, root, cli_env):
    proc = subprocess.run(
        [sys.executable, "-m", "jaxcnn.evaluate", LENET, f"--workdir={tmp_path}", "--config.bach_size=8"],
        cwd=root,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "did you mean config.batch_size?" in _one_error_line(proc)


def test_a_workdir_that_is_a_file_is_one_line_and_no_banner(tmp_path, run_cli):
    path = tmp_path / "file"
    path.write_text("x")
    proc = run_cli(LENET + ":smoke", f"--workdir={path}", check=False, timeout=120)
    assert f"workdir {path} is a file, not a directory" in _one_error_line(proc)  # no oneDNN lines


def test_the_smoke_run_learns_and_both_commands_start_quietly(mnist_split, tmp_path, root, cli_env, run_cli):
    proc = run_cli(LENET + ":smoke", f"--workdir={tmp_path}", timeout=300)
    error = float(proc.stdout.split("test error ")[1].split("%")[0])
    assert error < 50.0, proc.stdout  # chance is 90%
    evaluation = subprocess.run(
        [sys.executable, "-m", "jaxcnn.evaluate", LENET + ":smoke", f"--workdir={tmp_path}"],
        cwd=root,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert evaluation.returncode == 0 and "step 120: center top-1 error" in evaluation.stdout
    for stderr in (proc.stderr, evaluation.stderr):
        assert "oneDNN" not in stderr and "absl::InitializeLog" not in stderr
        assert not re.search(r"^I\d{4} ", stderr, re.M), stderr[-2000:]  # absl INFO lines
