"""Runs a measurement in a fresh Python process and reads back its one `RESULT {json}` line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child_env(env: dict | None = None) -> dict:
    """The environment of a measurement: one CPU device (no forced fake devices), quiet TF, and
    the repository on PYTHONPATH so the child imports this checkout's jaxcnn and benchmarks."""
    env = dict(os.environ if env is None else env)
    env.pop("XLA_FLAGS", None)  # tests force 2 fake devices; a measurement runs as users do
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def run_child(args: list[str], env: dict | None = None, timeout: float = 600) -> dict:
    """Runs `python ARGS`; returns the JSON of its `RESULT ` line, or raises RuntimeError with the
    end of its stderr (the reason) when it fails, times out or prints no result."""
    try:
        done = subprocess.run(
            [sys.executable, *args],
            cwd=ROOT,
            env=child_env(env),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"{' '.join(args)} did not finish in {timeout} s") from e
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    reason = [ln for ln in done.stderr.splitlines() if ln.strip()][-1:] or ["(no output)"]
    raise RuntimeError(f"{' '.join(args)} exited with {done.returncode}: {reason[0]}")
