"""mimalloc for XLA:CPU: a CPU train step takes far fewer page faults for its large temporaries.

XLA:CPU allocates one block per execution for a step's temporaries (1.45 GB for ResNet-50 at batch
16, 3.7 GB for MobileNet v2 at 32) with malloc on a worker thread. glibc serves a block that large
from a fresh mmap and unmaps it when it is freed, so each step the kernel faults it in and zeroes it
again: 365,000 page faults and 0.75 s of system time per ResNet-50 step on 2 cores. Under mimalloc
(`MIMALLOC_PURGE_DELAY=1000`: freed memory is kept 1 s before it is returned) a whole ResNet-50
measurement takes 110,000-127,000 page faults instead of 2.27 million. Measured on 2 cores,
interleaved (benchmarks/README.md): ResNet-50 at batch 16 2.02 -> 1.60-1.75 s per step,
MobileNet v2 at 32 2.08 -> 1.19 s with resident memory no larger than glibc's (4.5 GB at most in
40 steps). VGG-16 at batch 8 is mixed, 3.05 -> 2.73-4.3 s (the slow runs are transparent huge pages,
which MobileNet v2 needs): JAXCNN_ALLOCATOR=system or MIMALLOC_ALLOW_THP=0 for it.
glibc's own way to keep such blocks (one arena, no mmap, no trim) grew MobileNet v2's heap from
4 to 23 GB in 25 steps.

An allocator must be in place before the process starts, so the command line calls `use_mimalloc`
first: it re-executes the same command with mimalloc preloaded, when JAX will run on the CPU only
(JAX_PLATFORMS=cpu, or no CUDA, ROCm or TPU plugin installed) on Linux and the `cmeel-mimalloc`
wheel is installed. `python -m jaxcnn.main` imports the jaxcnn package (and with it JAX) before
jaxcnn/main.py runs, so the package's __init__ asks `relaunch_command_line` first: it acts only
when this process is the trainer's command line (`python -m jaxcnn.main`, `jaxcnn-train`), and
this module imports nothing but the standard library. `benchmarks.measure` calls `use_mimalloc`
itself. Importing jaxcnn in a notebook or a test changes nothing. JAXCNN_ALLOCATOR=system keeps
glibc's malloc.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import sys
from pathlib import Path

ENV = "JAXCNN_ALLOCATOR"
CHOICES = ("mimalloc", "system")
PURGE_DELAY_MS = "1000"  # ResNet-50 b16: 1.65 s per step at 1000 ms, 1.82 s at mimalloc's 10 ms


def cpu_only() -> bool:
    """Whether JAX will run on the CPU: JAX_PLATFORMS=cpu, or no accelerator plugin installed.

    Decided without starting a JAX backend."""
    platforms = os.environ.get("JAX_PLATFORMS", "")
    if platforms:
        return {p.strip() for p in platforms.split(",") if p.strip()} == {"cpu"}
    plugins = importlib.metadata.entry_points(group="jax_plugins")
    return not plugins and importlib.util.find_spec("libtpu") is None


def mimalloc_library() -> Path | None:
    """The shared library of the installed `cmeel-mimalloc` wheel, or None."""
    try:
        files = importlib.metadata.files("cmeel-mimalloc") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.name.startswith("libmimalloc.so."):
            path = Path(f.locate())
            if path.exists():
                return path
    return None


def allocator() -> str:
    """$JAXCNN_ALLOCATOR, checked: 'mimalloc' (the default) or 'system'."""
    setting = os.environ.get(ENV, "mimalloc")
    if setting not in CHOICES:
        raise ValueError(f"{ENV}={setting!r}: expected one of {', '.join(CHOICES)}")
    return setting


def preloaded() -> bool:
    """Whether this process runs with mimalloc preloaded."""
    return "libmimalloc" in os.environ.get("LD_PRELOAD", "")


def relaunch_environment() -> dict[str, str] | None:
    """The environment to re-execute this command in with mimalloc preloaded, or None when the
    process should go on as it is (already preloaded, asked not to, not a CPU-only Linux host, or
    no mimalloc installed)."""
    if allocator() == "system" or sys.platform != "linux" or not cpu_only():
        return None
    library = mimalloc_library()
    if library is None or preloaded():
        return None
    preload = os.environ.get("LD_PRELOAD", "")
    env = dict(os.environ)
    env["LD_PRELOAD"] = f"{library}:{preload}" if preload else str(library)
    env.setdefault("MIMALLOC_PURGE_DELAY", PURGE_DELAY_MS)
    return env


def use_mimalloc() -> None:
    """Re-executes this process's command with mimalloc preloaded (see the module docstring); call
    it first thing in a command-line entry point, before anything has started threads."""
    env = relaunch_environment()
    if env is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, sys.orig_argv, env)


COMMAND_MODULE = "jaxcnn.main"
COMMAND_SCRIPT = "jaxcnn-train"  # pyproject.toml's [project.scripts]


def is_command_line() -> bool:
    """Whether this process runs the trainer's command line: `python [OPTIONS] -m jaxcnn.main ...`
    (while its package is being imported, sys.argv[0] is "-m") or the `jaxcnn-train` script."""
    argv = list(sys.orig_argv)
    if sys.argv[:1] == ["-m"] and "-m" in argv[1:]:
        at = argv.index("-m", 1)
        return argv[at + 1 : at + 2] == [COMMAND_MODULE]
    return bool(sys.argv) and os.path.basename(sys.argv[0]) == COMMAND_SCRIPT


def relaunch_command_line() -> None:
    """`use_mimalloc` for the trainer's command line only (a no-op in any other process); a bad
    JAXCNN_ALLOCATOR ends the command with one line."""
    if not is_command_line():
        return
    try:
        use_mimalloc()
    except ValueError as e:
        sys.exit(f"error: {e}")
