"""What every peer's train step provides to the timing code, and the synthetic batch they share."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

# SGD's rate for every peer: VGG's 0.01 (Simonyan & Zisserman 2015, Sec. 3.1), at which even the
# networks without BatchNorm keep a finite loss on random data. Speed does not depend on it.
LEARNING_RATE = 0.01


@dataclasses.dataclass(frozen=True)
class TrainStep:
    """One peer's train step on a fixed synthetic batch.

    Attributes:
      run: runs one step (forward, backward, optimizer update) and returns the loss as a Python
        float, so that the step has finished when it returns.
      num_params: trainable parameters of the peer's network.
      input_shape: (height, width, channels) of one image.
    """

    run: Callable[[], float]
    num_params: int
    input_shape: tuple[int, int, int]


def synthetic_batch(
    batch_size: int, input_size: tuple[int, int, int], num_classes: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Standard-normal NHWC float32 images and uniform int32 labels (the same for every peer)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((batch_size, *input_size), dtype=np.float32)
    labels = rng.integers(0, num_classes, batch_size, dtype=np.int32)
    return images, labels
