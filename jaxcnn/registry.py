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
      family: the module of jaxcnn.models that defines it ("resnet", "vgg", ...).
      num_params: trainable parameters at the default `num_classes`.
      gmacs: multiply-adds (conv + dense, one image at `input_size`) in billions, as `summary`
        counts them; torchvision's published figure where torchvision has the network.
      input_size: (height, width, channels) the paper feeds the network.
      num_classes: the default number of outputs.
      reference: the paper, "Authors Year, Title".
      notes: what a reader should know (deviations, fixed parts, choices); no figures, which are fields.
      reported: the paper's reported errors, e.g. {"mnist/test_error": 0.95} (percent).
      small_input_size: a small spatial size the architecture accepts, for fast tests.
    """

    name: str
    family: str
    num_params: int
    gmacs: float
    input_size: tuple[int, int, int]
    num_classes: int
    reference: str
    notes: str = ""
    reported: dict[str, float] = dataclasses.field(default_factory=dict)
    small_input_size: int = 32


_MODELS: dict[str, tuple[Callable[..., nn.Module], dict[str, Any], ModelInfo]] = {}


def register_model(
    name: str, kwargs: dict[str, Any] | None = None, *, constructor: Callable[..., nn.Module], **facts: Any
) -> None:
    """Registers `constructor(**kwargs)` under `name` with its facts.

    A family binds what its variants share once and then registers one row per variant:

        _resnet = functools.partial(register_model, constructor=ResNet, input_size=(224, 224, 3), ...)
        _resnet("resnet50", dict(block="bottleneck", stage_sizes=(3, 4, 6, 3)), num_params=..., gmacs=...)

    Args:
      name: the registry name; registering a name twice raises ValueError.
      kwargs: the constructor's fields for this variant (none: its defaults).
      constructor: the flax module class.
      **facts: the ModelInfo fields other than `name` and `family` (the constructor's module).
    """
    if name in _MODELS:
        raise ValueError(f"model {name!r} is already registered")
    family = constructor.__module__.rpartition(".")[2]
    _MODELS[name] = (constructor, dict(kwargs or {}), ModelInfo(name=name, family=family, **facts))


def list_models() -> list[str]:
    """Returns the registered model names, sorted."""
    return sorted(_MODELS)


def _lookup(name: str):
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
