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
