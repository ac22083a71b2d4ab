"""The model registry: one table of facts per model, and create_model / list_models / model_info."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from typing import Any

import flax.linen as nn

from jaxcnn import cpu_ops


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """Facts about one registered model, kept as data beside its constructor.

    Attributes:
      name: registry name (torchvision's where torchvision has the network).
      num_params: trainable parameters at the default `num_classes`.
      input_size: (height, width, channels) the paper feeds the network.
      num_classes: the default number of outputs.
      paper: the reference, "Authors Year, Title".
      notes: what a reader should know (deviations, fixed parts, choices).
      reported: the paper's reported errors, e.g. {"mnist/test_error": 0.95} (percent).
      gmacs: multiply-adds (conv + dense, one image at input_size) in billions, the reference
        figure (torchvision's or the paper's) that `summary` must reproduce; None if unknown.
      small_input_size: a small spatial size the architecture accepts, for fast tests.
    """

    name: str
    num_params: int
    input_size: tuple[int, int, int]
    num_classes: int
    paper: str
    notes: str = ""
    reported: dict[str, float] = dataclasses.field(default_factory=dict)
    gmacs: float | None = None
    small_input_size: int = 32


_MODELS: dict[str, tuple[Callable[..., nn.Module], dict[str, Any], ModelInfo]] = {}


def register_model(
    name: str, constructor: Callable[..., nn.Module], kwargs: dict[str, Any], **facts: Any
) -> None:
    """Registers `constructor(**kwargs)` under `name` with its facts (see ModelInfo)."""
    if name in _MODELS:
        raise ValueError(f"model {name!r} is already registered")
    _MODELS[name] = (constructor, dict(kwargs), ModelInfo(name=name, **facts))


def list_models() -> list[str]:
    """Returns the registered model names, sorted."""
    _load_families()
    return sorted(_MODELS)


def _lookup(name: str):
    _load_families()
    if name not in _MODELS:
        close = difflib.get_close_matches(name, _MODELS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown model {name!r}.{hint} Known models: {', '.join(sorted(_MODELS))}")
    return _MODELS[name]


def model_info(name: str) -> ModelInfo:
    """Returns the registered facts of model `name` (raises ValueError naming the known models)."""
    return _lookup(name)[2]


def create_model(
    name: str, num_classes: int | None = None, *, cpu_kernels: str = "auto", **overrides: Any
) -> nn.Module:
    """Builds the flax linen module registered as `name`.

    Args:
      name: a name from `list_models()`.
      num_classes: number of outputs; the registered default (e.g. 10 for MNIST nets) if None.
      cpu_kernels: "auto" (default) or "on": on the CPU backend the model's plain conv, norm, act
        and pool are replaced by jaxcnn.cpu_ops' faster XLA:CPU formulations (same parameters and
        results); "off": plain flax on every backend. Other backends always get plain flax.
      **overrides: constructor fields to change, e.g. `dtype=jnp.bfloat16` or `dropout_rate=0.3`.

    Returns:
      An unbound `flax.linen.Module`; use `init(rng, x, train=False)` and `apply(variables, x, ...)`.
    """
    if cpu_kernels not in cpu_ops.CPU_KERNELS:
        raise ValueError(f"cpu_kernels must be one of {cpu_ops.CPU_KERNELS}, got {cpu_kernels!r}")
    constructor, registered, info = _lookup(name)
    kwargs = dict(registered)  # never mutate the table
    if num_classes is not None:
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
        kwargs["num_classes"] = num_classes
    fields = {f.name for f in dataclasses.fields(constructor)} - {"parent", "name"}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown override(s) {unknown} for model {name!r}; allowed: {sorted(fields)}")
    kwargs.update(overrides)
    kwargs.setdefault("num_classes", info.num_classes)
    kwargs.update(cpu_ops.injected_parts(constructor, kwargs, cpu_kernels))
    return constructor(**kwargs)


def _load_families() -> None:
    # Importing the families fills the table; done lazily so `registry` has no import cycle.
    from jaxcnn import models  # noqa: F401
