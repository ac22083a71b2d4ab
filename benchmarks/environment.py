"""The facts a results table needs beside its numbers: machine, library versions, date and load."""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform

PACKAGES = ("jax", "jaxlib", "flax", "optax", "keras", "torch", "torchvision", "numpy")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (other processes share the cores)."""
    return [round(x, 2) for x in os.getloadavg()]


def versions() -> dict[str, str | None]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def describe() -> dict:
    """Machine, versions and date of a benchmark run."""
    return {
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "memory_gib": round(memory_gib(), 1),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "versions": versions(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def accelerator() -> dict:
    """JAX's backend and device kind (a GPU's name, "cpu" in a test on the CPU)."""
    import jax

    device = jax.devices()[0]
    return {"backend": jax.default_backend(), "device": device.device_kind, "count": jax.device_count()}
