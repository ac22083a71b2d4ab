"""jaxcnn.host_memory: XLA:CPU's freed temporaries stay mapped, so later steps take no page faults."""

import json
import subprocess
import sys

import pytest

from jaxcnn import host_memory

# A fresh interpreter imports jaxcnn first (as users do), then runs a jitted step whose 64 MiB
# intermediate is one of XLA's temporaries, and counts the page faults of its 2nd-4th runs.
STEPS = """
import json, resource
import jaxcnn, jax, jax.numpy as jnp

@jax.jit
def step(x, w):
    return jnp.sum(jnp.tanh(x @ w) @ w)

x = jnp.ones((4096, 4096)) / 4096
step(x, x).block_until_ready()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    step(x, x).block_until_ready()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(json.dumps({"faults": faults}))
"""
TEMPORARY_PAGES = 4096 * 4096 * 4 // 4096


def faults_per_step(setting: str) -> float:
    env = {"JAXCNN_RETAIN_HOST_MEMORY": setting, "JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", STEPS], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])["faults"] / 3


def test_retained_temporaries_take_no_page_faults():
    # without the setting glibc unmaps the 64 MiB temporary after each run and faults it back in
    assert faults_per_step("0") > TEMPORARY_PAGES / 2
    assert faults_per_step("1") < TEMPORARY_PAGES / 20


def test_bad_setting_is_named(monkeypatch):
    monkeypatch.setenv(host_memory.ENV, "yes")
    with pytest.raises(
        ValueError, match=r"JAXCNN_RETAIN_HOST_MEMORY='yes': expected 0 \(off, the default\) or 1"
    ):
        host_memory.retain_freed_memory()


@pytest.mark.parametrize(
    "platforms, expected", [("cpu", True), ("cuda", False), ("cpu,cuda", False), ("tpu", False)]
)
def test_cpu_only_follows_jax_platforms(monkeypatch, platforms, expected):
    monkeypatch.setenv("JAX_PLATFORMS", platforms)
    assert host_memory.cpu_only() is expected


@pytest.mark.parametrize("setting", [None, "0"])
def test_off_unless_asked_for(monkeypatch, setting):
    if setting is None:
        monkeypatch.delenv(host_memory.ENV, raising=False)
    else:
        monkeypatch.setenv(host_memory.ENV, setting)
    assert host_memory.retain_freed_memory() is False


def test_accelerator_hosts_are_left_alone(monkeypatch):
    monkeypatch.setenv(host_memory.ENV, "1")
    monkeypatch.setenv("JAX_PLATFORMS", "cuda")
    assert host_memory.retain_freed_memory() is False
