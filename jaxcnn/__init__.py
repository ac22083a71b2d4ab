"""jaxcnn: the classic ImageNet CNNs in JAX/Flax, with the papers' recipes."""

import importlib

__version__ = "0.1.0"

# Loaded on first use, so that `python -m jaxcnn.main` can choose the process's allocator
# (jaxcnn/host_memory.py) before JAX and Flax are imported.
_REGISTRY = ("ModelInfo", "create_model", "list_models", "model_info", "register_model")
_LAZY = {name: "jaxcnn.registry" for name in _REGISTRY}
_LAZY["summary"] = "jaxcnn.model_summary"
_SUBMODULES = ("build",)  # jaxcnn.build: build.build(config, ...) -> Built (model, tx, schedule, state)

__all__ = sorted((*_LAZY, *_SUBMODULES))


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"jaxcnn.{name}")
    raise AttributeError(f"module 'jaxcnn' has no attribute {name!r}")
