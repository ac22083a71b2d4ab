"""torchvision models under torch.compile: the peer PyTorch users reach for on an accelerator."""

from __future__ import annotations

from benchmarks import step_torch
from benchmarks.step_common import TrainStep


def build(network: str, batch_size: int, image_size: int = 0, precision: str = "float32") -> TrainStep:
    """step_torch.build with the model wrapped in torch.compile (see there)."""
    return step_torch.build(network, batch_size, image_size, precision, compiled=True)
