"""jaxcnn.host_memory: the command line re-runs itself under mimalloc on CPU-only hosts, and there
XLA:CPU's large temporaries take far fewer page faults than under glibc."""

import json
import subprocess
import sys

import pytest

from jaxcnn import host_memory

# A fresh interpreter starts the way jaxcnn.main does (use_mimalloc first), then runs a jitted step
# whose 64 MiB intermediate is one of XLA's temporaries, and counts the page faults of its 2nd-4th
# runs. It reports whether mimalloc is mapped into it, and how many times it started.
STEPS = """
import json, os, resource
from jaxcnn import host_memory
starts = int(os.environ.get("STARTS", "0")) + 1
os.environ["STARTS"] = str(starts)
host_memory.use_mimalloc()
import jax, jax.numpy as jnp

@jax.jit
def step(x, w):
    return jnp.sum(jnp.tanh(x @ w) @ w.T)

# Thin factors: the 4096 x 4096 product is the 64 MiB temporary, and a step takes milliseconds, well
# inside mimalloc's purge delay even on a loaded machine (a square 4096^3 product took seconds there,
# long enough for the freed temporary to be returned between steps).
x = jnp.ones((4096, 64)) / 64
step(x, x.T).block_until_ready()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):
    step(x, x.T).block_until_ready()
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
mapped = "libmimalloc" in open("/proc/self/maps").read()
print(json.dumps({"faults_per_step": faults / 3, "mimalloc": mapped, "starts": starts}))
"""
TEMPORARY_PAGES = 4096 * 4096 * 4 // 4096


def run_steps(**env) -> dict:
    env = {"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin", **env}
    done = subprocess.run([sys.executable, "-c", STEPS], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_mimalloc_is_installed_with_jaxcnn():
    # a dependency on x86-64 Linux (pyproject.toml): without it the default would silently be glibc
    library = host_memory.mimalloc_library()
    assert library is not None and library.name.startswith("libmimalloc.so.")


def test_under_mimalloc_temporaries_take_no_page_faults():
    default = run_steps()
    assert default["mimalloc"] and default["starts"] == 2  # re-executed once, not again
    assert default["faults_per_step"] < TEMPORARY_PAGES / 20
    # glibc unmaps the 64 MiB temporary after each run and faults it back in
    system = run_steps(JAXCNN_ALLOCATOR="system")
    assert not system["mimalloc"] and system["starts"] == 1
    assert system["faults_per_step"] > TEMPORARY_PAGES / 2


def test_bad_setting_is_named(monkeypatch):
    monkeypatch.setenv(host_memory.ENV, "jemalloc")
    with pytest.raises(ValueError, match=r"JAXCNN_ALLOCATOR='jemalloc': expected one of mimalloc, system"):
        host_memory.use_mimalloc()


def test_bad_setting_fails_the_command_line_before_jax_is_imported(tmp_path):
    # The setting is read where the re-execution would happen: no JAX import may come before it.
    env = {"JAXCNN_ALLOCATOR": "tcmalloc", "PATH": "/usr/bin:/bin"}
    args = [
        "-X",
        "importtime",
        "-m",
        "jaxcnn.main",
        "--config=configs/lenet5_mnist.py",
        f"--workdir={tmp_path}",
    ]
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    errors = [ln for ln in done.stderr.splitlines() if not ln.startswith("import time:")]
    assert errors == ["error: JAXCNN_ALLOCATOR='tcmalloc': expected one of mimalloc, system"]
    imported = {
        ln.rsplit("|", 1)[-1].strip() for ln in done.stderr.splitlines() if ln.startswith("import time:")
    }
    assert "jaxcnn.host_memory" in imported and not imported & {"jax", "flax", "optax", "tensorflow"}
    assert not any(tmp_path.iterdir())


def test_the_command_line_runs_under_mimalloc(tmp_path):
    # A recipe that reports its process's LD_PRELOAD in the command line's one error line.
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import os\n\n\ndef get_config(arg=None):\n    raise ValueError(os.environ['LD_PRELOAD'])\n"
    )
    env = {"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"}
    args = ["-m", "jaxcnn.main", f"--config={probe}", f"--workdir={tmp_path / 'run'}"]
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.stderr.strip() == f"error: {host_memory.mimalloc_library()}"


def test_importing_jaxcnn_elsewhere_keeps_the_process_and_loads_the_api():
    code = (
        "import os, sys, jaxcnn\n"
        "print(os.environ.get('LD_PRELOAD', ''), 'jaxcnn.registry' in sys.modules,\n"
        "      jaxcnn.create_model.__module__)"
    )
    env = {"JAX_PLATFORMS": "cpu", "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "jaxcnn.registry"]  # no preload, the API imported eagerly


@pytest.mark.parametrize(
    "argv0, orig_argv, expected",
    [
        ("-m", ["python", "-u", "-m", "jaxcnn.main", "--workdir=x"], True),
        ("-m", ["python", "-m", "jaxcnn.evaluate"], False),
        ("/venv/bin/jaxcnn-train", ["python", "/venv/bin/jaxcnn-train"], True),
        ("-c", ["python", "-c", "import jaxcnn", "-m", "jaxcnn.main"], False),
        ("/usr/bin/pytest", ["python", "/usr/bin/pytest"], False),
    ],
)
def test_only_the_trainers_command_line_counts(monkeypatch, argv0, orig_argv, expected):
    monkeypatch.setattr(sys, "argv", [argv0])
    monkeypatch.setattr(sys, "orig_argv", orig_argv)
    assert host_memory.is_command_line() is expected


@pytest.mark.parametrize(
    "platforms, expected", [("cpu", True), ("cuda", False), ("cpu,cuda", False), ("tpu", False)]
)
def test_cpu_only_follows_jax_platforms(monkeypatch, platforms, expected):
    monkeypatch.setenv("JAX_PLATFORMS", platforms)
    assert host_memory.cpu_only() is expected


def test_preload_environment(monkeypatch):
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    monkeypatch.delenv(host_memory.ENV, raising=False)
    monkeypatch.setenv("LD_PRELOAD", "libother.so")
    monkeypatch.setenv("MIMALLOC_PURGE_DELAY", "50")
    env = host_memory.relaunch_environment()
    assert env["LD_PRELOAD"] == f"{host_memory.mimalloc_library()}:libother.so"
    assert env["MIMALLOC_PURGE_DELAY"] == "50"  # a user's own setting is kept
    monkeypatch.setenv("LD_PRELOAD", env["LD_PRELOAD"])
    assert host_memory.relaunch_environment() is None  # already preloaded: no second re-execution


@pytest.mark.parametrize("setting, platforms", [("system", "cpu"), ("mimalloc", "cuda"), ("mimalloc", "tpu")])
def test_glibc_kept_when_asked_or_on_accelerator_hosts(monkeypatch, setting, platforms):
    monkeypatch.setenv(host_memory.ENV, setting)
    monkeypatch.setenv("JAX_PLATFORMS", platforms)
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    assert host_memory.relaunch_environment() is None
