"""jaxcnn: the classic ImageNet CNNs in JAX/Flax, with the papers' recipes."""

# The command line (`python -m jaxcnn.main`, `jaxcnn-train`) re-executes itself under mimalloc before
# JAX is imported (host_memory.py, standard library only); in any other process this does nothing.
from jaxcnn import host_memory as _host_memory

_host_memory.relaunch_command_line()

from jaxcnn import build  # noqa: E402  (build.build(config, ...) -> Built: model, tx, schedule, state)
from jaxcnn.registry import ModelInfo, create_model, list_models, model_info, register_model  # noqa: E402


def summary(*args, **kwargs):
    """jaxcnn.model_summary.summary, imported when first called: importing it with the package would
    make `python -m jaxcnn.model_summary` warn that its module was imported twice."""
    from jaxcnn.model_summary import summary as summarize

    return summarize(*args, **kwargs)


__version__ = "0.1.0"
__all__ = ["ModelInfo", "build", "create_model", "list_models", "model_info", "register_model", "summary"]
