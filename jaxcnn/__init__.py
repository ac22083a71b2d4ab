"""jaxcnn: the classic ImageNet CNNs in JAX/Flax, with the papers' recipes."""

# The command line (`python -m jaxcnn.main`, `jaxcnn-train`) re-executes itself under mimalloc before
# JAX is imported (host_memory.py, standard library only); in any other process this does nothing.
from jaxcnn import host_memory as _host_memory

_host_memory.relaunch_command_line()

# ruff: noqa: E402  (the imports below must follow the relaunch)
from jaxcnn import (
    build,  # build.build(config, ...) -> Built: model, tx, schedule, state
    models,  # noqa: F401  (importing the families fills the registry)
)
from jaxcnn.pretrained import list_pretrained, load_pretrained
from jaxcnn.registry import ModelInfo, create_model, list_models, model_info, register_model


def summary(*args, **kwargs):
    """jaxcnn.model_summary.summary, imported when first called: importing it with the package would
    make `python -m jaxcnn.model_summary` warn that its module was imported twice."""
    from jaxcnn.model_summary import summary as summarize

    return summarize(*args, **kwargs)


def features(*args, **kwargs):
    """jaxcnn.extract.features (pooled penultimate features, and named feature maps with
    stages=True), imported when first called, as `summary`."""
    from jaxcnn.extract import features as extract_features

    return extract_features(*args, **kwargs)


__version__ = "0.1.0"
__all__ = [
    "ModelInfo",
    "build",
    "create_model",
    "features",
    "list_models",
    "list_pretrained",
    "load_pretrained",
    "model_info",
    "register_model",
    "summary",
]
