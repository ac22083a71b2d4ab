"""XLA:CPU formulations of convolution, BatchNorm, ReLU and max-pooling, injected by `create_model`.

Each part has flax's parameters, names, values and gradients (tests/test_cpu_ops.py checks both),
and runs faster than lax's own ops on XLA:CPU: 1x1 convolutions as matrix products, depthwise ones
as shifted multiply-adds, grouped ones as per-group matmuls, large kernel gradients over chunks of
the batch, a BatchNorm with a closed-form backward pass, ReLU differentiated through its output and
a max-pool whose backward pass is one sweep. The models themselves are plain flax: they take
`conv`, `norm`, `act` and `pool` from their constructor, and `injected_parts` says which of them
`registry.create_model` replaces (on the CPU backend unless `cpu_kernels="off"`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental.layout import Layout, with_layout_constraint

from jaxcnn import layers

NHWC_HWIO = ((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))  # lhs, rhs, out specs of flax's Conv


def conv_general_dilated(
    lhs,
    rhs,
    window_strides,
    padding,
    lhs_dilation=None,
    rhs_dilation=None,
    dimension_numbers=None,
    feature_group_count=1,
    precision=None,
    **kwargs,
):
    """lax.conv_general_dilated, with the convolutions XLA:CPU runs slowly written the way it runs fast.

    The result is the same; the speed on XLA:CPU is not (measurements in benchmarks/README.md):
    - An ungrouped 1x1 convolution is one matrix product (with `_pointwise`'s backward pass).
      XLA:CPU computes the kernel gradient of a 1x1 convolution as a convolution over the batch
      with both operands first transposed to channel-major, while the gradient of a dot is one
      GEMM contracting N*H*W. A strided 1x1 convolution subsamples first (what it computes).
    - A depthwise convolution (one filter per channel, MobileNet's) is a sum of k*k shifted,
      strided views of the input times per-channel weights, which XLA fuses into one loop;
      XLA:CPU's grouped-convolution kernels are many times slower at MobileNet's shapes.
    - Other grouped convolutions (ResNeXt's 32 groups, AlexNet's two towers on one device) are
      one matmul per group over the k*k views (im2col): XLA:CPU's backward pass of a grouped
      convolution is far slower.
    - Other k x k convolutions whose maps outgrow `KERNEL_GRADIENT_CHUNK_BYTES` compute their
      kernel gradient over chunks of the batch (`_spatial`).
    """
    plain = (
        rhs.ndim == 4
        and kwargs.get("batch_group_count", 1) == 1
        and all(d == 1 for d in tuple(lhs_dilation or ()) + tuple(rhs_dilation or ()))
        and dimension_numbers is not None
        and tuple(map(tuple, dimension_numbers)) == NHWC_HWIO
    )
    one_by_one = (
        plain
        and rhs.shape[:2] == (1, 1)
        and feature_group_count == 1
        # "SAME" pads a 1x1 window by nothing, whatever the stride
        and (padding in ("SAME", "VALID") or all(tuple(p) == (0, 0) for p in padding))
    )
    if plain and not one_by_one:
        strides = tuple(window_strides)
        pads = _explicit_pads(lhs.shape, rhs.shape[:2], strides, padding)
        if feature_group_count > 1:
            if feature_group_count == lhs.shape[-1] == rhs.shape[-1] and rhs.shape[2] == 1:
                return _depthwise(lhs, rhs, strides, pads)
            return _grouped(lhs, rhs, strides, pads, feature_group_count)
        chunks = _kernel_gradient_chunks(lhs, rhs, strides, pads)
        if precision is None and chunks > 1:
            return _spatial(lhs, rhs, strides, pads, chunks)
    if not one_by_one:
        return lax.conv_general_dilated(
            lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation, dimension_numbers,
            feature_group_count, precision=precision, **kwargs,
        )  # fmt: skip
    sh, sw = window_strides
    if (sh, sw) != (1, 1):
        lhs = lhs[:, ::sh, ::sw, :]
    if precision is None:
        return _pointwise(lhs, rhs[0, 0])
    return lax.dot_general(lhs, rhs[0, 0], (((3,), (0,)), ((), ())), precision=precision)


def _explicit_pads(shape, window, strides, padding) -> tuple:
    # "SAME"/"VALID" or (lo, hi) pairs for the spatial dims of an (N, H, W, C) shape, as pairs
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(shape[1:3], window, strides, padding)
    return tuple(tuple(p) for p in padding)


def _window_views(x, window, strides, pads, pad_value=0.0):
    """The k*k strided views of the padded (N, H, W, C) map, one per window offset (i, j), row-major:
    view (i, j)[n, h, w] = x_padded[n, i + s_h h, j + s_w w]. Returns (padded shape, {(i, j): view}).
    """
    x = jnp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=pad_value)
    n, height, width, c = x.shape
    (sh, sw), (kh, kw) = strides, window
    oh, ow = (height - kh) // sh + 1, (width - kw) // sw + 1
    views = {
        (i, j): lax.slice(
            x, (0, i, j, 0), (n, i + (oh - 1) * sh + 1, j + (ow - 1) * sw + 1, c), (1, sh, sw, 1)
        )
        for i in range(kh)
        for j in range(kw)
    }
    return x.shape, views


def _depthwise(x, kernel, strides, pads):
    # sum over window offsets (i, j) of x_padded[n, i + s h, j + s w, c] * kernel[i, j, 0, c]
    _, views = _window_views(x, kernel.shape[:2], strides, pads)
    return sum(view * kernel[i, j, 0] for (i, j), view in views.items())


def _grouped(x, kernel, strides, pads, groups):
    # Per group, the k*k views side by side (im2col) times that group's kernel: one batched matmul
    # over groups, contracting k*k*C_in/groups. Output channel o belongs to group o // (C_out/groups).
    kh, kw, group_in, out = kernel.shape
    _, views = _window_views(x, (kh, kw), strides, pads)
    n, oh, ow, _ = next(iter(views.values())).shape
    columns = jnp.stack([v.reshape(n, oh, ow, groups, group_in) for v in views.values()], axis=4)
    columns = columns.reshape(n, oh, ow, groups, kh * kw * group_in)
    weights = kernel.reshape(kh * kw * group_in, groups, out // groups).transpose(1, 0, 2)
    return jnp.einsum("nhwgk,gko->nhwgo", columns, weights).reshape(n, oh, ow, out)


# A k x k kernel gradient is computed over chunks of the batch whose input and output maps fit in
# this many bytes (the best of 1-16 MiB on ResNet-18 and ResNet-50, benchmarks/README.md).
KERNEL_GRADIENT_CHUNK_BYTES = 2 << 20


def _kernel_gradient_chunks(x, kernel, strides, pads) -> int:
    """How many chunks of the batch the kernel gradient of this convolution is summed over (1: none)."""
    budget = KERNEL_GRADIENT_CHUNK_BYTES
    n, height, width, _ = x.shape
    out = [
        (size + lo + hi - k) // s + 1
        for size, (lo, hi), k, s in zip((height, width), pads, kernel.shape[:2], strides)
    ]
    per_example = (math.prod(x.shape[1:]) + out[0] * out[1] * kernel.shape[-1]) * x.dtype.itemsize
    size = max(
        (c for c in range(1, n + 1) if n % c == 0 and (c * per_example <= budget or c == 1)), default=1
    )
    return max(n // size, 1)


def _conv(x, kernel, strides, pads):
    return lax.conv_general_dilated(x, kernel, strides, pads, dimension_numbers=("NHWC", "HWIO", "NHWC"))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4))
def _spatial(x, kernel, strides, pads, chunks):
    """A k x k convolution whose kernel gradient is summed over `chunks` interleaved parts of the batch.

    XLA:CPU computes a kernel gradient as a convolution over the batch after transposing both
    operands to channel-major. Once the maps no longer fit in cache the transposes crawl; over
    chunks that fit they do not. Forward and input gradient are lax's own.
    """
    return _conv(x, kernel, strides, pads)


def _spatial_fwd(x, kernel, strides, pads, chunks):
    return _conv(x, kernel, strides, pads), (x, kernel)


def _spatial_bwd(strides, pads, chunks, residuals, g):
    x, kernel = residuals
    (dx,) = jax.vjp(lambda x: _conv(x, kernel, strides, pads), x)[1](g)
    # interleaved chunks (example i in chunk i % chunks): each stays spread over a sharded batch
    n = x.shape[0]
    xs = x.reshape(n // chunks, chunks, *x.shape[1:])
    gs = g.reshape(n // chunks, chunks, *g.shape[1:])
    dkernel = sum(
        jax.vjp(lambda k, c=c: _conv(xs[:, c], k, strides, pads), kernel)[1](gs[:, c])[0]
        for c in range(chunks)
    )
    return dx, dkernel


_spatial.defvjp(_spatial_fwd, _spatial_bwd)


def _row_major(a: jax.Array) -> jax.Array:
    return with_layout_constraint(a, Layout(tuple(range(a.ndim))))


@jax.custom_vjp
def _pointwise(x, w):
    """x (..., C_in) @ w (C_in, C_out): a 1x1 convolution, whose backward pass XLA:CPU lays out well.

    Left to itself, XLA:CPU's layout assignment asks for the kernel gradient's operands in channel-
    major order and, to get it, recomputes the BatchNorm backward that produced the cotangent a
    second time, writing it transposed. Pinning the cotangent
    and the input to their row-major (NHWC) layout keeps one copy of each.
    """
    return lax.dot_general(x, w, (((x.ndim - 1,), (0,)), ((), ())))


def _pointwise_fwd(x, w):
    return _pointwise(x, w), (x, w)


def _pointwise_bwd(residuals, g):
    x, w = residuals
    x, g = _row_major(x), _row_major(g)
    positions = tuple(range(x.ndim - 1))
    dx = lax.dot_general(g, w, (((g.ndim - 1,), (1,)), ((), ())))
    dw = lax.dot_general(x, g, ((positions, positions), ((), ())))
    return dx.astype(x.dtype), dw.astype(w.dtype)


_pointwise.defvjp(_pointwise_fwd, _pointwise_bwd)


# flax's Conv with the formulations above: the same parameters, names and results.
Conv = functools.partial(nn.Conv, conv_general_dilated=conv_general_dilated)


@jax.custom_jvp
def relu_from_output(x):
    """max(x, 0) with relu'(0) = 0, as jax.nn.relu, but differentiated through its output.

    relu(x) > 0 exactly where x > 0, so the gradient is jax.nn.relu's; reading it from the output
    lets the backward pass keep only the activation the next layer saves anyway, not also the
    BatchNorm output before it (one array the size of each activation less to write and keep).
    """
    return jnp.maximum(x, 0)


relu_from_output.defjvps(lambda g, ans, x: lax.select(ans > 0, g, lax.full_like(g, 0)))


def _moments(x):
    # Batch mean and (biased) variance per channel in float32, in two passes: the mean of
    # (x - mean)^2, as flax's use_fast_variance=False. E[x^2] - E[x]^2 cancels catastrophically
    # when |mean| >> std (a map of 100 + N(0, 1) loses four digits of its variance).
    x = x.astype(jnp.float32)
    axes = tuple(range(x.ndim - 1))
    mean = jnp.mean(x, axes)
    var = jnp.mean(jnp.square(x - mean), axes)
    return mean, var


def _normalize(x, mean, var, scale, bias, epsilon, dtype):
    mul = lax.rsqrt(var + epsilon) * scale
    return ((x.astype(jnp.float32) - mean) * mul + bias).astype(dtype)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4))
def _batch_norm_train(x, scale, bias, epsilon, dtype):
    """Normalise x with its own batch statistics; returns (y, mean, var), all differentiable.

    The backward pass is the closed form (Ioffe & Szegedy 2015, Sec. 3) in two sweeps over x: one
    for the per-channel sums of dy and dy * (x - mean), one for dx = a dy + b (x - mean) + c. It
    keeps x (the convolution's output, which exists anyway) rather than the centred copy and
    partial products that differentiating the forward pass would keep.
    """
    return _batch_norm_train_fwd(x, scale, bias, epsilon, dtype)[0]


def _batch_norm_train_fwd(x, scale, bias, epsilon, dtype):
    mean, var = _moments(x)
    y = _normalize(x, mean, var, scale, bias, epsilon, dtype)
    return (y, mean, var), (x, mean, var, scale)


def _batch_norm_train_bwd(epsilon, dtype, residuals, cotangents):
    x, mean, var, scale = residuals
    dy, dmean, dvar = cotangents
    axes = tuple(range(x.ndim - 1))
    count = x.size // x.shape[-1]
    dy, x32 = dy.astype(jnp.float32), x.astype(jnp.float32)
    rstd = lax.rsqrt(var + epsilon)
    sum_dy = jnp.sum(dy, axes)
    # sum(dy (x - mean)) from sum(dy x): x - mean is never formed, so XLA cannot keep the forward
    # pass's centred copy of x alive for it (a whole extra activation per layer).
    sum_dy_centred = jnp.sum(dy * x32, axes) - mean * sum_dy
    a = scale * rstd
    # d/dx of y through mean and var, plus the direct path; dmean and dvar are the cotangents of
    # the returned statistics (zero when, as in BatchNorm, they only feed the running averages).
    slope = (2.0 * dvar - a * rstd * rstd * sum_dy_centred) / count
    offset = (dmean - a * sum_dy) / count - slope * mean
    dx = a * dy + slope * x32 + offset
    return dx.astype(x.dtype), (sum_dy_centred * rstd).astype(scale.dtype), sum_dy.astype(scale.dtype)


_batch_norm_train.defvjp(_batch_norm_train_fwd, _batch_norm_train_bwd)


class BatchNorm(layers.BatchNorm):
    """layers.BatchNorm (the same variables, running averages and results) whose training-mode
    normalisation has a fused closed-form backward pass (`_batch_norm_train`)."""

    def normalize_batch(self, x, scale, bias, dtype):
        return _batch_norm_train(x, scale, bias, self.epsilon, dtype)


def max_pool(x, window_shape, strides=None, padding="VALID"):
    """flax's nn.max_pool on (N, H, W, C) maps, the same values and gradients, with a backward pass
    in one sweep.

    XLA:CPU differentiates a max-pool through select-and-scatter, which it expands into index maps
    and a scatter. Here each of the
    k*k window offsets instead compares its strided view of x with the pooled output, and the
    gradient goes to the first maximum in row-major window order, as select-and-scatter chooses.
    """
    strides = tuple(strides or (1,) * len(window_shape))
    if x.ndim != 4 or len(window_shape) != 2:
        return nn.max_pool(x, tuple(window_shape), strides, padding)
    return _max_pool(x, tuple(window_shape), strides, _explicit_pads(x.shape, window_shape, strides, padding))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _max_pool(x, window, strides, pads):
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, *window, 1), (1, *strides, 1), ((0, 0), *pads, (0, 0)))


def _max_pool_fwd(x, window, strides, pads):
    y = _max_pool(x, window, strides, pads)
    return y, (x, y)


def _max_pool_bwd(window, strides, pads, residuals, g):
    x, y = residuals
    padded_shape, views = _window_views(x, window, strides, pads, pad_value=-jnp.inf)
    unclaimed = jnp.ones(y.shape, bool)
    dx = jnp.zeros(padded_shape, g.dtype)
    for (di, dj), view in views.items():
        first = unclaimed & (view == y)
        unclaimed = unclaimed & ~first
        spread = [(0, 0, 0)]
        for offset, size, stride, full in zip((di, dj), y.shape[1:3], strides, padded_shape[1:3]):
            spread.append((offset, full - offset - (size - 1) * stride - 1, stride - 1))
        dx = dx + lax.pad(jnp.where(first, g, 0), jnp.zeros((), g.dtype), [*spread, (0, 0, 0)])
    (top, _), (left, _) = pads
    return (lax.slice(dx, (0, top, left, 0), (x.shape[0], top + x.shape[1], left + x.shape[2], x.shape[3])),)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


CPU_KERNELS = ("auto", "on", "off")

# Constructor field -> (the plain flax part a model takes by default, this module's replacement).
_REPLACEMENTS = {
    "conv": (nn.Conv, Conv),
    "norm": (layers.BatchNorm, BatchNorm),
    "act": (nn.relu, relu_from_output),
    "pool": (nn.max_pool, max_pool),
}


def injected_parts(constructor: type[nn.Module], kwargs: dict[str, Any], cpu_kernels: str = "auto") -> dict:
    """The constructor fields `registry.create_model` sets to this module's parts.

    Only a field still holding its plain default is replaced: a model whose `act` is ReLU6 or
    leaky ReLU keeps it, and so does any part a caller passes explicitly.

    Args:
      constructor: the model's flax module class.
      kwargs: the fields it is about to be given (registered values and overrides).
      cpu_kernels: "auto" or "on": on the CPU backend, replace the plain conv, norm, act and pool;
        "off": replace nothing (plain flax everywhere). "on" on another backend is an error.

    Returns:
      {field: part}; empty off the CPU backend or with "off".
    """
    if cpu_kernels not in CPU_KERNELS:
        raise ValueError(f"cpu_kernels must be one of {CPU_KERNELS}, got {cpu_kernels!r}")
    backend = jax.default_backend()
    if cpu_kernels == "on" and backend != "cpu":
        raise ValueError(f"cpu_kernels='on' needs the cpu backend, not {backend!r}; use 'auto' or 'off'")
    if cpu_kernels == "off" or backend != "cpu":
        return {}
    defaults = {f.name: f.default for f in dataclasses.fields(constructor)}
    return {
        field: replacement
        for field, (plain, replacement) in _REPLACEMENTS.items()
        if field in defaults and kwargs.get(field, defaults[field]) is plain
    }
