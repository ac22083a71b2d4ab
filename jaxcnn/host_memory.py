"""Opt-in: keep the host memory XLA:CPU frees, so that a train step does not fault its temporaries in.

XLA:CPU allocates one block per execution for a step's temporaries (1.45 GB for ResNet-50 at batch
16, 3.7 GB for MobileNet v2 at 32) with malloc on one of its worker threads. glibc serves a block
that large from a fresh mmap, because a worker thread's arena cannot hold it, and unmaps it when it
is freed, so each step the kernel faults in and zeroes it again: 365,000 page faults and 0.75 s of
system time per ResNet-50 step on 2 cores (getrusage around the steps). With every thread served
from the main arena, which grows its heap without mmap and is never trimmed, the block stays mapped
from one step to the next: no faults, and the ResNet-50 step goes from 2.2 to 1.75 s.

Why it is off unless asked for (JAXCNN_RETAIN_HOST_MEMORY=1): the heap only grows. When a step's
block cannot reuse the previous one's hole (the previous block is freed after the next is
allocated, or smaller allocations have split the hole), the heap grows by a whole block, and that
memory is never returned. MobileNet v2 at batch 32 went from 4 to 23 GB resident in 25 steps on a
24 GB machine (ResNet-50 at 16 stayed at 2.5 GB). Turn it on for long CPU runs whose step
temporaries are small beside the machine's memory, and watch the resident set.

`retain_freed_memory` makes the three mallopt settings on Linux with glibc, when JAX has only the
CPU to run on (no CUDA, ROCm or TPU plugin installed, or JAX_PLATFORMS=cpu). It runs when jaxcnn is
imported and only reaches threads that have not yet allocated, so set the variable and import
jaxcnn before the first JAX computation.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import importlib.util
import os
import platform
import sys

# mallopt's parameters (glibc's malloc.h)
M_TRIM_THRESHOLD, M_MMAP_MAX, M_ARENA_MAX = -1, -4, -8
ENV = "JAXCNN_RETAIN_HOST_MEMORY"


def cpu_only() -> bool:
    """Whether JAX will run on the CPU: JAX_PLATFORMS=cpu, or no accelerator plugin installed.

    Decided without starting a JAX backend (starting it creates the threads this module must reach
    first)."""
    platforms = os.environ.get("JAX_PLATFORMS", "")
    if platforms:
        return {p.strip() for p in platforms.split(",") if p.strip()} == {"cpu"}
    plugins = importlib.metadata.entry_points(group="jax_plugins")
    return not plugins and importlib.util.find_spec("libtpu") is None


def retain_freed_memory() -> bool:
    """With $JAXCNN_RETAIN_HOST_MEMORY=1 on a CPU-only host (`cpu_only`) with glibc: serves all
    threads from glibc's main arena, with no mmap and no trimming. True if it did."""
    setting = os.environ.get(ENV, "0")
    if setting not in ("0", "1"):
        raise ValueError(f"{ENV}={setting!r}: expected 0 (off, the default) or 1 (on)")
    if setting == "0" or not cpu_only():
        return False
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)
    settings = ((M_ARENA_MAX, 1), (M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, -1))  # -1: never trim
    return all(libc.mallopt(param, value) == 1 for param, value in settings)  # 1: success
