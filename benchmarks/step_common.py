"""What every peer's train step provides to the timing code, and the synthetic batch they share."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

# SGD's rate for every peer: VGG's 0.01 (Simonyan & Zisserman 2015, Sec. 3.1), at which even the
# networks without BatchNorm keep a finite loss on random data. Speed does not depend on it.
LEARNING_RATE = 0.01


# The two ways a step is timed (benchmarks/measure.py). "cpu": float32, one host sync per step, as
# the CPU table has always been measured. "accelerator": bfloat16 compute, windows of steps
# dispatched back to back with one sync at the end, as a training loop on a GPU/TPU runs.
MODES = ("cpu", "accelerator")
PRECISION = {"cpu": "float32", "accelerator": "bfloat16"}


@dataclasses.dataclass(frozen=True)
class TrainStep:
    """One peer's train step on a fixed synthetic batch.

    Attributes:
      step: dispatches one step (forward, backward, optimizer update) without waiting for it.
      sync: waits until every dispatched step has finished; returns the last step's loss.
      num_params: trainable parameters of the peer's network.
      input_shape: (height, width, channels) of one image.
    """

    step: Callable[[], None]
    sync: Callable[[], float]
    num_params: int
    input_shape: tuple[int, int, int]

    def run(self) -> float:
        """One step and its host sync: the step has finished when this returns its loss."""
        self.step()
        return self.sync()


def check_precision(precision: str) -> None:
    if precision not in ("float32", "bfloat16"):
        raise ValueError(f"precision must be float32 or bfloat16, got {precision!r}")


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
