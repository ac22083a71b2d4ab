"""Plain helpers for the tests (no fixtures): the repository root, CLI subprocesses, small configs.

A test that needs only these takes the `root`, `cli_env` and `run_cli` fixtures of conftest.py. A
module whose code outside a test needs them (parametrize lists, helpers that load a recipe or start
a run) imports them from here, and its tests use the same names.
"""

import os
import subprocess
import sys
from pathlib import Path

from configs.base import base_config

ROOT = Path(__file__).resolve().parents[1]

# Fake devices are threads on this machine's 2 cores: under load one can reach a collective long
# after the others, and XLA:CPU aborts a collective that waits past its (short) default deadline.
PATIENT_COLLECTIVES = (
    "--xla_cpu_collective_call_terminate_timeout_seconds=900 "
    "--xla_cpu_collective_call_warn_stuck_timeout_seconds=300"
)


def cli_env(devices=1):
    """The environment of a CLI subprocess with `devices` CPU devices (not the tests' two)."""
    return dict(
        os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices} {PATIENT_COLLECTIVES}"
    )


def run_cli(*args, devices=1, timeout=600, check=True):
    """Runs `python -m jaxcnn.main ARGS` in a fresh process with `devices` CPU devices."""
    proc = subprocess.run(
        [sys.executable, "-m", "jaxcnn.main", *args],
        cwd=ROOT,
        env=cli_env(devices),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        # XLA's fatal errors print their reason first and a long stack after it: show both ends.
        reasons = [ln for ln in proc.stderr.splitlines() if ln[:1] in "FE" and "]" in ln[:40]]
        raise AssertionError(
            f"jaxcnn.main {args} failed ({proc.returncode}):\n"
            + "\n".join(reasons[:5])
            + f"\n...\n{proc.stderr[-2000:]}"
        )
    return proc


def data_config(name, data_dir="", *, size=32, batch=4, eval_batch=4, **input_keys):
    """A small config for dataset `name`: configs.base.base_config() with `input_keys` set."""
    c = base_config()
    c.dataset.name, c.dataset.data_dir = name, data_dir
    c.input.image_size, c.input.normalize = size, "unit"
    c.batch_size, c.eval_batch_size, c.seed = batch, eval_batch, 5
    c.input.train_augment, c.input.extra_augment, c.input.num_shards = "none", "", 6
    for key, value in input_keys.items():
        c.input[key] = value
    c.eval.crop_ratio, c.eval.scales = 0.875, (24, 32, 40)
    return c


def mnist_config(model="lenet5_modern", **overrides):
    """configs/mnist_convnet.py with `model` at batch 8 on 32x32 inputs, evaluating and checkpointing
    every 10 steps of 100, and `overrides` (flattened keys) set."""
    from jaxcnn import config_lib

    config = config_lib.load_config(str(ROOT / "configs" / "mnist_convnet.py"))
    config.model.name = model
    config.batch_size = 8
    config.input.image_size = 32
    config.eval_every_epochs = config.checkpoint_every_epochs = 0  # the tests' intervals are steps
    config.eval_every_steps = config.checkpoint_every_steps = 10
    config.num_train_steps = 100
    config.update_from_flattened_dict(overrides)
    return config
