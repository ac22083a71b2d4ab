"""configs/resnet_imagenet.py end to end on a fake ILSVRC2012 prepared by TFDS's real builder:
training steps, then every evaluation protocol through `python -m jaxcnn.evaluate`."""

import json
import subprocess
import sys

import numpy as np
import pytest

from jaxcnn import config_lib
from jaxcnn.metric_writer import read_metrics
from jaxcnn.train import train_and_evaluate

PROTOCOLS = ("center", "ten_crop", "multi_scale", "crops144")


@pytest.mark.slow  # about 100 s on 2 cores, like the other paper recipes' smoke runs (make test-slow)
def test_resnet_recipe_trains_and_evaluates_with_every_protocol(fake_imagenet, tmp_path, root, cli_env):
    data_dir, facts = fake_imagenet
    config = config_lib.load_config(str(root / "configs" / "resnet_imagenet.py:smoke"))
    config.dataset.data_dir = data_dir
    config.num_train_steps = config.eval_every_steps = config.checkpoint_every_steps = 6
    config.log_every_steps = 3
    result = train_and_evaluate(config, str(tmp_path))
    num_val = 6
    for protocol in PROTOCOLS:  # the smoke recipe evaluates every protocol while training
        prefix = "eval" if protocol == "center" else f"eval_{protocol}"
        assert result[f"{prefix}/num_examples"] == num_val
        assert 0.0 <= result[f"{prefix}/top1_error"] <= 1.0 and np.isfinite(result[f"{prefix}/loss"])
    records = read_metrics(str(tmp_path))
    assert [r["step"] for r in records if "train/loss" in r] == [3, 6]

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "jaxcnn.evaluate",
            "--config=configs/resnet_imagenet.py:smoke",
            f"--workdir={tmp_path}",
            f"--config.dataset.data_dir={data_dir}",
            "--protocols=ten_crop",
        ],
        cwd=root,
        env=cli_env(2),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "step 6: ten_crop top-1 error" in proc.stdout and "(6 examples)" in proc.stdout
    saved = json.loads((tmp_path / "eval_results.json").read_text())["6"]
    # The same checkpoint, the same protocol: the command line reproduces the training-time numbers.
    for prefix in ("eval_ten_crop",):
        assert saved[f"{prefix}/top1_error"] == pytest.approx(result[f"{prefix}/top1_error"])
        assert saved[f"{prefix}/loss"] == pytest.approx(result[f"{prefix}/loss"], rel=1e-5)


def test_evaluate_rejects_an_unknown_protocol(tmp_path, root, cli_env):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "jaxcnn.evaluate",
            "--config=configs/lenet5_mnist.py",
            f"--workdir={tmp_path}",
            "--protocols=center,twelve_crop",
        ],
        cwd=root,
        env=cli_env(1),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("error: unknown evaluation protocol 'twelve_crop'")
