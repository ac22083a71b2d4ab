"""Checks before compiling: what would otherwise fail deep inside tracing, said in one line."""

from __future__ import annotations

import functools

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
