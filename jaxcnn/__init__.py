"""jaxcnn: the classic ImageNet CNNs in JAX/Flax, with the papers' recipes."""

from jaxcnn import host_memory

host_memory.retain_freed_memory()  # opt-in, before JAX starts its threads: see jaxcnn/host_memory.py

from jaxcnn.registry import ModelInfo, create_model, list_models, model_info, register_model  # noqa: E402

__version__ = "0.1.0"

__all__ = ["ModelInfo", "create_model", "list_models", "model_info", "register_model", "summary"]


def __getattr__(name):
    # `summary` loads lazily so that `python -m jaxcnn.model_summary` runs its module only once.
    if name == "summary":
        from jaxcnn.model_summary import summary

        return summary
    raise AttributeError(f"module 'jaxcnn' has no attribute {name!r}")
