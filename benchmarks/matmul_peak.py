"""This machine's matmul peak: FLOP/s of a large float32 matmul (2 n^3 FLOPs), best of several runs.

    python -m benchmarks.matmul_peak --size 4096 --repeats 5

The peak of XLA's own dot (jax.numpy) is the reference for MFU; NumPy's BLAS and PyTorch's are
reported beside it when importable, so the reference is not a slow library's peak.
"""

from __future__ import annotations

import argparse
import json
import time


def best_seconds(fn, repeats: int) -> float:
    """The fastest of `repeats` calls of fn() after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def jax_gflops(n: int, repeats: int, dtype: str = "float32") -> float:
    import jax
    import jax.numpy as jnp

    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), dtype)
    b = jax.random.normal(jax.random.PRNGKey(1), (n, n), dtype)
    dot = jax.jit(jnp.dot)
    return 2 * n**3 / best_seconds(lambda: dot(a, b).block_until_ready(), repeats) / 1e9


def numpy_gflops(n: int, repeats: int) -> float:
    import numpy as np

    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    return 2 * n**3 / best_seconds(lambda: a @ a, repeats) / 1e9


def torch_gflops(n: int, repeats: int) -> float:
    import os

    import torch

    torch.set_num_threads(os.cpu_count())
    a = torch.randn(n, n)
    return 2 * n**3 / best_seconds(lambda: a @ a, repeats) / 1e9


def probe(
    n: int = 4096, repeats: int = 5, libraries: tuple[str, ...] = ("jax", "numpy", "torch"), dtype="float32"
) -> dict:
    """GFLOP/s of an n x n matmul per library; "peak_gflops" is the best of them.

    dtype: "float32", or "bfloat16" (the accelerator mode's compute type), measured on XLA's dot
    alone (on the default backend: the GPU/TPU when one is present).
    """
    if n < 1 or repeats < 1:
        raise ValueError(f"size and repeats must be positive, got {n} and {repeats}")
    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"dtype must be float32 or bfloat16, got {dtype!r}")
    if dtype == "bfloat16":
        return {
            "size": n,
            "dtype": dtype,
            "jax_gflops": (peak := jax_gflops(n, repeats, dtype)),
            "peak_gflops": peak,
        }
    probes = {"jax": jax_gflops, "numpy": numpy_gflops, "torch": torch_gflops}
    result = {"size": n}
    for lib in libraries:
        try:
            result[f"{lib}_gflops"] = probes[lib](n, repeats)
        except ImportError:
            continue  # torch is optional: the peak is then the best of the others
    result["peak_gflops"] = max(v for k, v in result.items() if k.endswith("_gflops"))
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    args = parser.parse_args(argv)
    print("RESULT " + json.dumps(probe(args.size, args.repeats, dtype=args.dtype)), flush=True)


if __name__ == "__main__":
    main()
