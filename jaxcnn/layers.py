"""Building blocks shared by the model families, in plain flax: torchvision's BatchNorm defaults, a
conv-norm-act unit, LRN, squeeze-excite, drop-path, and the pieces of dense (fully-convolutional)
evaluation. Faster XLA:CPU formulations of conv, norm, act and pool live in jaxcnn/cpu_ops.py."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp


class BatchNorm(nn.Module):
    """Batch normalisation over all axes but the last (Ioffe & Szegedy 2015, Alg. 1 and 2), with
    torchvision's defaults: BatchNorm2d(momentum=0.1, eps=1e-5) is a running-average decay of 0.9.

    flax's variable names (params scale and bias; batch_stats mean and var), so checkpoints and
    jaxcnn.cpu_ops.BatchNorm are interchangeable. Training normalises with the biased batch
    variance; the running variance averages the unbiased one, n / (n - 1) times it (Alg. 2:
    Var[x] = m / (m - 1) E_B[sigma_B^2]), as torch does; flax's nn.BatchNorm averages the biased
    one. The batch variance is computed in two passes, mean((x - mean)^2) in float32, as torch: the
    one-pass E[x^2] - E[x]^2 loses digits when a channel's mean is large against its spread.
    Running averages are not updated during init, as in flax.
    """

    use_running_average: bool | None = None
    momentum: float = 0.9
    epsilon: float = 1e-5
    dtype: Any = None
    param_dtype: Any = jnp.float32
    use_bias: bool = True
    use_scale: bool = True
    bias_init: Callable = nn.initializers.zeros
    scale_init: Callable = nn.initializers.ones

    @nn.compact
    def __call__(self, x, use_running_average: bool | None = None):
        use_running_average = nn.merge_param(
            "use_running_average", self.use_running_average, use_running_average
        )
        features = (x.shape[-1],)
        ra_mean = self.variable("batch_stats", "mean", lambda s: jnp.zeros(s, jnp.float32), features)
        ra_var = self.variable("batch_stats", "var", lambda s: jnp.ones(s, jnp.float32), features)
        scale = self.param("scale", self.scale_init, features, self.param_dtype) if self.use_scale else 1.0
        bias = self.param("bias", self.bias_init, features, self.param_dtype) if self.use_bias else 0.0
        dtype = self.dtype or jnp.result_type(x, jnp.asarray(scale), jnp.asarray(bias))
        scale, bias = jnp.asarray(scale, jnp.float32), jnp.asarray(bias, jnp.float32)
        if use_running_average:
            return self.normalize(x, ra_mean.value, ra_var.value, scale, bias, dtype)
        y, mean, var = self.normalize_batch(x, scale, bias, dtype)
        if not self.is_initializing():
            mean, var = jax.lax.stop_gradient(mean), jax.lax.stop_gradient(var)
            count = x.size // x.shape[-1]
            ra_mean.value = self.momentum * ra_mean.value + (1 - self.momentum) * mean
            ra_var.value = self.momentum * ra_var.value + (1 - self.momentum) * var * (
                count / max(count - 1, 1)
            )
        return y

    def normalize(self, x, mean, var, scale, bias, dtype):
        """(x - mean) / sqrt(var + eps) * scale + bias, computed in float32."""
        y = (x.astype(jnp.float32) - mean) * (jax.lax.rsqrt(var + self.epsilon) * scale)
        return (y + bias).astype(dtype)

    def normalize_batch(self, x, scale, bias, dtype):
        """x normalised with its own statistics; returns (y, batch mean, biased batch variance).

        Two passes in float32 (mean, then mean((x - mean)^2)): the one-pass E[x^2] - E[x]^2 loses
        digits when a channel's mean is large against its spread. jaxcnn.cpu_ops.BatchNorm replaces
        this method only.
        """
        axes = tuple(range(x.ndim - 1))
        x32 = x.astype(jnp.float32)
        mean = jnp.mean(x32, axes)
        var = jnp.mean(jnp.square(x32 - mean), axes)
        return self.normalize(x, mean, var, scale, bias, dtype), mean, var


class ConvNormAct(nn.Module):
    """conv -> optional norm -> act, the unit of the Inception networks (torchvision's BasicConv2d)
    and of darknet (its "convolutional" layer). Submodules "conv" and "bn".

    Attributes:
      features, kernel_size, strides, padding: the convolution's (strides an int, applied to both dims).
      conv, norm, act: bound by the parent; norm None for conv -> act.
    """

    features: int
    kernel_size: tuple[int, int]
    strides: int = 1
    padding: Any = "SAME"
    conv: Callable[..., nn.Module] = nn.Conv
    norm: Callable[..., nn.Module] | None = None
    act: Callable = nn.relu

    @nn.compact
    def __call__(self, x):
        s = (self.strides, self.strides)
        x = self.conv(self.features, self.kernel_size, strides=s, padding=self.padding, name="conv")(x)
        if self.norm is not None:
            x = self.norm(name="bn")(x)
        return self.act(x)


class LocalResponseNorm(nn.Module):
    """Across-channel local response normalisation (Krizhevsky et al. 2012, Sec. 3.3).

    b_c = a_c / (k + alpha * sum_{c' in window of n around c} a_{c'}^2) ** beta. The paper's
    constants (k=2, n=5, alpha=1e-4, beta=0.75) are the defaults; alpha multiplies the plain sum,
    as in the paper (torchvision's LocalResponseNorm divides alpha by n). With `groups` > 1 the
    channels are that many contiguous groups normalised apart: the 2012 net's two towers each
    normalise their own maps (each GPU held only its half, Sec. 3.5).
    """

    size: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    k: float = 2.0
    groups: int = 1

    @nn.compact
    def __call__(self, x):
        channels = x.shape[-1]
        if channels % self.groups:
            raise ValueError(f"LRN groups={self.groups} must divide the {channels} channels")
        squared = jnp.square(x.astype(jnp.float32))
        if self.groups > 1:  # windows stay inside each group: a trailing (groups, channels / groups)
            squared = squared.reshape(*x.shape[:-1], self.groups, channels // self.groups)
        half = self.size // 2
        padded = jnp.pad(squared, [(0, 0)] * (squared.ndim - 1) + [(half, self.size - 1 - half)])
        window = jax.lax.reduce_window(
            padded, 0.0, jax.lax.add, (1,) * (squared.ndim - 1) + (self.size,), (1,) * squared.ndim, "VALID"
        ).reshape(x.shape)
        return (x / jnp.power(self.k + self.alpha * window, self.beta).astype(x.dtype)).astype(x.dtype)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018): channel gates from globally pooled features.

    The two FC layers are 1x1 convs "fc1" and "fc2" with biases; `conv` and `act` come from the parent.
    """

    reduction: int = 16
    dtype: jnp.dtype = jnp.float32
    conv: Callable[..., nn.Module] = nn.Conv
    act: Callable = nn.relu

    @nn.compact
    def __call__(self, x):
        channels = x.shape[-1]
        s = jnp.mean(x, axis=(1, 2), keepdims=True)
        s = self.act(self.conv(channels // self.reduction, (1, 1), dtype=self.dtype, name="fc1")(s))
        s = nn.sigmoid(self.conv(channels, (1, 1), dtype=self.dtype, name="fc2")(s))
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
    """Max-pooling as a named module, so per-layer summaries list it as the papers' tables do.

    `pool` has nn.max_pool's signature and comes from the parent.
    """

    window: int = 3
    stride: int = 2
    padding: str | tuple = "VALID"
    pool: Callable = nn.max_pool

    @nn.compact
    def __call__(self, x):
        padding = self.padding if isinstance(self.padding, str) else tuple(self.padding)
        return self.pool(x, (self.window,) * 2, strides=(self.stride,) * 2, padding=padding)


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


class DenseAsConv(nn.Conv):
    """A Dense layer on a flattened h x w x c map, applied as an h x w VALID convolution.

    Dense evaluation (Simonyan & Zisserman 2015, Sec. 3.2: "the first FC layer is converted to a 7x7
    conv. layer, the last two FC layers to 1x1 conv. layers"): on a map larger than the one fc6 was
    trained on, its (h*w*c, out) kernel, reshaped to (h, w, c, out) (the row-major order in which
    the map was flattened), slides over the map and gives one output vector per h x w window. The
    parameters are the Dense layer's ("kernel" (h*w*c, out), "bias" (out,)), so one checkpoint
    serves both forms. `kernel_size` is (h, w); stride 1, no padding.
    """

    @nn.compact
    def __call__(self, inputs):
        h, w = self.kernel_size
        c = inputs.shape[-1]
        kernel = self.param("kernel", self.kernel_init, (h * w * c, self.features), self.param_dtype)
        bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype)
        inputs, kernel, bias = self.promote_dtype(inputs, kernel, bias, dtype=self.dtype)
        y = jax.lax.conv_general_dilated(
            inputs,
            kernel.reshape(h, w, c, self.features),
            (1, 1),
            "VALID",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            precision=self.precision,
        )
        return y + bias


def dense_window(module: nn.Module, layer: str, x: jax.Array, window: tuple[int, int] | None):
    """The h x w window over which the first fc layer `layer` of `module` slides on x, or None.

    None means "flatten x and apply the Dense layer as trained": whenever x's map is the one the
    layer was built for, and at init when the model does not fix that map (the map at init then
    defines it). A map larger in both dims (and not equal) gives its (h, w) window: the model is
    then evaluated densely (DenseAsConv, later fc layers per position, scores averaged). Init on a
    larger input with a fixed window takes the dense path too, creating the same parameters.

    Args:
      module: the model, bound (inside its compact __call__).
      layer: name of its first fc layer (a Dense on the flattened map), e.g. "fc6".
      x: the (N, H, W, C) map before that layer.
      window: the map the layer is built for when the model fixes it (an adaptive pool to this size
        precedes it; maps smaller than it keep going through that pool); None reads it from the
        layer's kernel, (h*w*C, out), as the square h = w = sqrt(rows / C).

    Returns:
      (h, w), or None.
    """
    height, width, channels = x.shape[1:]
    if window is None:
        if module.is_initializing():
            return None
        rows = module.variables["params"][layer]["kernel"].shape[0]
        side = math.isqrt(rows // channels)
        if side * side * channels != rows:
            if rows == height * width * channels:
                return None  # the (non-square) map it was initialised on
            raise ValueError(
                f"{layer} was built for a non-square map ({rows} inputs, {channels} channels); dense "
                f"evaluation of a {height}x{width} map needs the square map it was initialised on"
            )
        window = (side, side)
        if height < side or width < side:
            raise ValueError(
                f"{layer} was built for a {side}x{side} map, this input gives {height}x{width}: use "
                "an input at least as large as the one the model was initialised with"
            )
    if (height, width) == tuple(window) or height < window[0] or width < window[1]:
        return None
    return tuple(window)


# How a classifier built for the native map meets a larger one (the `classifier_pool` field of
# AlexNet, VGG, GoogLeNet and Inception): "dense" slides it (the papers' dense evaluation, VGG Sec.
# 3.2) and averages the class scores; "adaptive" average-pools the map to the native grid first
# (torchvision's AdaptiveAvgPool2d), so the classifier sees one map. Same weights, different logits;
# both are the identity at the native size.
CLASSIFIER_POOLS = ("dense", "adaptive")


def check_classifier_pool(value: str) -> None:
    """ValueError naming `value` and the allowed modes unless it is one of CLASSIFIER_POOLS."""
    if value not in CLASSIFIER_POOLS:
        raise ValueError(f"classifier_pool={value!r}; allowed: {', '.join(CLASSIFIER_POOLS)}")


def mean_over_positions(x: jax.Array) -> jax.Array:
    """Dense evaluation's spatial average of a (N, H, W, C) score map (sum-pooling, Simonyan &
    Zisserman 2015, Sec. 3.2); (N, C) passes through."""
    return x if x.ndim == 2 else jnp.mean(x, axis=(1, 2))


def window_avg_pool(x: jax.Array, window: int) -> jax.Array:
    """A fixed k x k average pool before a linear classifier, made dense; returns (N, C).

    GoogLeNet's 7x7 and Inception's 8x8 pools cover the whole last map at the training size, where
    this is the global mean (as before). On a larger map the window slides at stride 1 and the window
    means are averaged: since the classifier after it is linear, that equals applying the classifier
    at every window and averaging the class score map, which is what sliding the trained network over
    the larger image gives (VGG's dense evaluation). It differs from the global mean only in weights:
    border positions fall in fewer windows. A dim smaller than k is pooled whole.
    """
    kh, kw = min(window, x.shape[1]), min(window, x.shape[2])
    if (kh, kw) == x.shape[1:3]:
        return jnp.mean(x, axis=(1, 2))
    return jnp.mean(nn.avg_pool(x, (kh, kw), (1, 1)), axis=(1, 2))
