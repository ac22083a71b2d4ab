"""jaxcnn: the classic ImageNet CNNs in JAX/Flax, with the papers' recipes."""

from jaxcnn.registry import ModelInfo, create_model, list_models, model_info, register_model

__version__ = "0.1.0"

__all__ = ["ModelInfo", "create_model", "list_models", "model_info", "register_model"]
