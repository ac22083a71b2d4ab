"""Checks before compiling: what would otherwise fail deep inside tracing, said in one line."""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp

from jaxcnn import registry


def _trace_error(model, size: int, channels: int) -> Exception | None:
    """The error of tracing model.init on one size x size x channels image (nothing is allocated)."""
    key = jax.random.PRNGKey(0)
    image = jax.ShapeDtypeStruct((1, size, size, channels), jnp.float32)
    try:
        jax.eval_shape(functools.partial(model.init, train=False), {"params": key, "dropout": key}, image)
    except Exception as e:  # noqa: BLE001 - any trace-time failure; classified by the caller
        return e
    return None


def check_input_size(model, name: str, image_size: int, channels: int) -> None:
    """Raises ValueError when `model` (registered as `name`) cannot take image_size x image_size inputs.

    Models whose layers shrink the image below a kernel (LeNet-5's C5, AlexNet's pools) fail at
    trace time with a ZeroDivisionError or a slice TypeError; this traces the model once on the
    configured size (jax.eval_shape) and turns such a failure into "lenet5 needs at least 32x32, got
    28". The smallest size is searched between the configured size and the registered
    small_input_size, which the model is known to take. An error that the known size also raises
    is not about the size and propagates unchanged.
    """
    error = _trace_error(model, image_size, channels)
    if error is None:
        return
    known = registry.model_info(name).small_input_size
    if _trace_error(model, known, channels) is not None:
        raise error
    first_line = (str(error).strip().splitlines() or [""])[0][:120]
    reason = f"{type(error).__name__}: {first_line}"
    if image_size < known:
        lo, hi = image_size, known  # lo fails, hi works
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if _trace_error(model, mid, channels) is not None else (lo, mid)
        raise ValueError(
            f"{name} needs at least {hi}x{hi} inputs, got config.input.image_size={image_size} ({reason})"
        )
    raise ValueError(
        f"{name} cannot take {image_size}x{image_size} inputs ({reason}); it takes e.g. "
        f"config.input.image_size={known}"
    )


# Tests and users who want to reserve memory for something else set this (bytes): it replaces the
# measured memory the train step may use (per device on accelerators, the host's RAM on the CPU).
MEMORY_LIMIT_ENV = "JAXCNN_MEMORY_LIMIT_BYTES"


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**27 else f"{n / 2**20:.1f} MiB"


def host_memory_available() -> int | None:
    """MemAvailable of /proc/meminfo in bytes (what the host can give without swapping), None elsewhere."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def step_memory(compiled) -> dict[str, int] | None:
    """XLA's memory analysis of a compiled step, per device: arguments, outputs, temporaries and the
    donated (aliased) bytes, and `peak` = arguments + outputs + temporaries - aliased. None when the
    backend reports nothing."""
    stats = compiled.memory_analysis()
    if stats is None:
        return None
    parts = {
        "arguments": stats.argument_size_in_bytes,
        "outputs": stats.output_size_in_bytes,
        "temporaries": stats.temp_size_in_bytes,
        "aliased": stats.alias_size_in_bytes,
    }
    parts["peak"] = parts["arguments"] + parts["outputs"] + parts["temporaries"] - parts["aliased"]
    return parts


def _available(device, resident: int) -> tuple[int | None, str]:
    """(bytes the step may use, where the figure comes from), for one accelerator or the whole host."""
    override = os.environ.get(MEMORY_LIMIT_ENV, "").strip()
    if override:
        try:
            return int(float(override)), f"${MEMORY_LIMIT_ENV}"
        except ValueError:
            raise ValueError(f"${MEMORY_LIMIT_ENV}={override!r} must be a number of bytes") from None
    if device.platform == "cpu":
        free = host_memory_available()
        if free is None:
            return None, ""
        # The state and the first batch are already in host RAM: MemAvailable no longer counts them.
        return free + resident, f"host RAM: MemAvailable {_gib(free)} + {_gib(resident)} already held"
    stats = device.memory_stats() or {}
    limit = stats.get("bytes_limit")
    return (int(limit), f"{device.device_kind} memory limit") if limit else (None, "")


def _accumulation_that_fits(batch_size: int, fits: int, data_devices: int, accum: int) -> int | None:
    """The smallest grad_accum_steps k >= `accum` whose micro-batch B / k is at most `fits` and splits
    evenly over the data devices; None when there is none."""
    for k in range(max(accum, 1), batch_size + 1):
        if batch_size % k == 0 and (batch_size // k) % data_devices == 0 and batch_size * accum <= fits * k:
            return k
    return None


def check_memory(jitted_step, state, batch, config, data_devices: int) -> dict[str, int] | None:
    """Compiles the train step for (state, batch) and refuses, in one line, a step that cannot fit.

    The compilation is the one the trainer then runs: jax.jit caches the executable that
    `.lower(...).compile()` builds for these arguments, so the first step does not compile again.
    The step's footprint is XLA's own memory analysis (arguments + outputs + temporaries - donated
    buffers), compared with the device's allocator limit on GPU/TPU, or with the host's available RAM
    (plus what the state already holds) for the CPU devices of this process together. On a refusal the
    step is compiled again at smaller batch sizes (shapes only) until one is found that fits.

    Returns:
      The analysis (bytes per device, see step_memory), or None when the backend gives none.

    Raises:
      MemoryError: one line with the estimate, the memory available, a batch size that fits and the
        grad_accum_steps / remat settings that trade time for memory.
    """
    compiled = jitted_step.lower(state, batch).compile()
    parts = step_memory(compiled)
    if parts is None:
        return None
    devices = [d for d in batch["image"].sharding.device_set if d.process_index == jax.process_index()]
    device = devices[0]
    # The host's CPU devices share its RAM: count every one of them; an accelerator has its own.
    count = len(devices) if device.platform == "cpu" else 1
    batch_bytes = sum(x.nbytes for x in jax.tree.leaves(batch)) // len(devices)
    peak = parts["peak"] * count
    resident = parts["arguments"] * count
    available, source = _available(device, resident)
    if available is None or peak <= available:
        return parts
    batch_size, accum = config.batch_size, config.grad_accum_steps
    step_unit = data_devices * accum

    # The footprint grows with the batch (activations) on top of a fixed part (the state, its
    # gradients, the optimizer's temporaries), but not smoothly: XLA's buffer assignment changes with
    # the shapes, odd sizes can take more than larger even ones. Refusing anyway, compile a few more
    # times (shapes only, on this failure path alone), halving the batch from the largest half that
    # a linear estimate allows, and name the first size whose own compilation fits.
    def peak_at(size: int) -> int | None:
        shrink = lambda x: jax.ShapeDtypeStruct(
            (x.shape[0] * size // batch_size, *x.shape[1:]), x.dtype, sharding=x.sharding
        )
        smaller = step_memory(jitted_step.lower(state, jax.tree.map(shrink, batch)).compile())
        return None if smaller is None else smaller["peak"] * count

    growing = (parts["temporaries"] + batch_bytes) * count  # what scales with the batch, at most
    fixed = peak - growing
    linear = batch_size * (available - fixed) / growing if available > fixed else 0
    size, fits, tried = batch_size // 2, 0, 0
    while size >= step_unit and size % step_unit == 0 and tried < 6:
        if size <= linear:
            tried += 1
            measured = peak_at(size)
            if measured is None or measured <= available:
                fits = size
                break
        size //= 2
    where = "the host" if device.platform == "cpu" else f"each {device.device_kind}"
    head = (
        f"the train step needs about {_gib(peak)} on {where} (XLA's estimate for batch_size={batch_size}: "
        f"arguments {_gib(parts['arguments'] * count)} + outputs {_gib(parts['outputs'] * count)} + "
        f"temporaries {_gib(parts['temporaries'] * count)} - donated {_gib(parts['aliased'] * count)}), "
        f"but {_gib(available)} is available ({source}); "
    )
    remat = " or config.remat='convs'" if config.remat != "convs" else ""
    if fits <= 0:
        raise MemoryError(
            head + f"no batch size down to {max(size, step_unit)} fits (the state and the optimizer alone "
            f"take about {_gib(max(fixed, 0))}): use a smaller model, config.precision='bfloat16'{remat} "
            "or more devices"
        )
    k = _accumulation_that_fits(batch_size, fits, data_devices, accum)
    accum_hint = f"keep it with config.grad_accum_steps={k}" if k else "raise config.grad_accum_steps"
    raise MemoryError(
        head + f"config.batch_size={fits} would fit, or {accum_hint}{remat} (slower steps, same batch)"
    )
