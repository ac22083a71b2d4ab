"""Test environment: two fake CPU devices (so every test exercises sharding), quiet TensorFlow."""

import os
import subprocess
import sys
from pathlib import Path

# Fake devices are threads on this machine's 2 cores: under load one can reach a collective long
# after the others, and XLA:CPU aborts a collective that waits past its (short) default deadline.
PATIENT_COLLECTIVES = (
    "--xla_cpu_collective_call_terminate_timeout_seconds=900 "
    "--xla_cpu_collective_call_warn_stuck_timeout_seconds=300"
)
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count=2 {PATIENT_COLLECTIVES}"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def mnist_split():
    """Opens the real MNIST test split (prepared by `make data`); fails, never skips, without it."""
    from jaxcnn.data import input as input_lib

    return input_lib.open_split("mnist", "test")


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
