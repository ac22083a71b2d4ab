"""Building blocks shared by the model families: BatchNorm defaults, LRN, squeeze-excite, drop-path."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp

# torchvision's BatchNorm2d(momentum=0.1, eps=1e-5) is flax's decay 0.9; eps as torchvision.
BatchNorm = functools.partial(nn.BatchNorm, momentum=0.9, epsilon=1e-5)


class LocalResponseNorm(nn.Module):
    """Across-channel local response normalisation (Krizhevsky et al. 2012, Sec. 3.3).

    b_c = a_c / (k + alpha * sum_{c' in window of n around c} a_{c'}^2) ** beta. The paper's
    constants (k=2, n=5, alpha=1e-4, beta=0.75) are the defaults; alpha multiplies the plain sum,
    as in the paper (torchvision's LocalResponseNorm divides alpha by n).
    """

    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 2.0

    @nn.compact
    def __call__(self, x):
        squared = jnp.square(x.astype(jnp.float32))
        half = self.size // 2
        padded = jnp.pad(squared, [(0, 0)] * (x.ndim - 1) + [(half, self.size - 1 - half)])
        window = jax.lax.reduce_window(
            padded, 0.0, jax.lax.add, (1,) * (x.ndim - 1) + (self.size,), (1,) * x.ndim, "VALID"
        )
        return (x / jnp.power(self.k + self.alpha * window, self.beta).astype(x.dtype)).astype(x.dtype)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018): channel gates from globally pooled features."""

    reduction: int = 16
    dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x):
        channels = x.shape[-1]
        s = jnp.mean(x, axis=(1, 2), keepdims=True)
        s = nn.relu(nn.Conv(channels // self.reduction, (1, 1), dtype=self.dtype, name="fc1")(s))
        s = nn.sigmoid(nn.Conv(channels, (1, 1), dtype=self.dtype, name="fc2")(s))
        return x * s


class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016): drops a residual branch per example while training."""

    rate: float = 0.0

    @nn.compact
    def __call__(self, x, train: bool = False):
        if not train or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        mask = jax.random.bernoulli(self.make_rng("dropout"), keep, (x.shape[0],) + (1,) * (x.ndim - 1))
        return jnp.where(mask, x / keep, 0.0).astype(x.dtype)


class MaxPool(nn.Module):
    """Max-pooling as a named module, so per-layer summaries list it as the papers' tables do."""

    window: int = 3
    stride: int = 2
    padding: str | tuple = "VALID"

    @nn.compact
    def __call__(self, x):
        padding = self.padding if isinstance(self.padding, str) else tuple(self.padding)
        return nn.max_pool(x, (self.window,) * 2, strides=(self.stride,) * 2, padding=padding)


def adaptive_avg_pool(x: jax.Array, output_size: tuple[int, int]) -> jax.Array:
    """torchvision's AdaptiveAvgPool2d on NHWC maps: pools (N, H, W, C) to (N, h, w, C).

    Output row i averages input rows floor(i H / h) to ceil((i + 1) H / h) - 1, likewise columns.
    Windows overlap or repeat when the map is smaller than `output_size` (a 1x1 map becomes h x w
    copies), so classifiers sized for 224x224 inputs also accept small ones. Built from slices and
    means (no matrix products), so it adds no multiply-adds to a model's count.
    """

    def pool(x, axis, out):
        size = x.shape[axis]
        if size == out:
            return x
        cells = [
            jnp.mean(
                jax.lax.slice_in_dim(x, i * size // out, -(-(i + 1) * size // out), axis=axis),
                axis,
                keepdims=True,
            )
            for i in range(out)
        ]
        return jnp.concatenate(cells, axis=axis)

    return pool(pool(x, 1, output_size[0]), 2, output_size[1])
