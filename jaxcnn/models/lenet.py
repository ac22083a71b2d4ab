"""LeNet-5 and small MNIST ConvNets.

LeCun, Bottou, Bengio, Haffner 1998, "Gradient-based learning applied to document recognition",
Proc. IEEE 86(11), Sec. II-B (architecture), Table I (C3 connections), Appendix A (squashing,
initialisation), Fig. 3 (RBF prototypes).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxcnn.registry import register_model

LECUN_1998 = "LeCun et al. 1998, Gradient-Based Learning Applied to Document Recognition"

# Table I: which S2 maps (rows 0-5) feed each C3 map (columns 0-15).
C3_TABLE = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5), (0, 1, 2, 5),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)  # fmt: skip

# Fig. 3: the output RBF centres are stylised 7x12 bitmaps of the digits, components +1 (ink)
# and -1 (paper). The paper does not print the bitmaps; these are drawn to the same rules.
DIGIT_BITMAPS = {
    0: ("..###..", ".#...#.", "#.....#", "#.....#", "#.....#", "#.....#",
        "#.....#", "#.....#", "#.....#", "#.....#", ".#...#.", "..###.."),
    1: ("...#...", "..##...", ".#.#...", "...#...", "...#...", "...#...",
        "...#...", "...#...", "...#...", "...#...", "...#...", ".#####."),
    2: (".#####.", "#.....#", "......#", "......#", ".....#.", "....#..",
        "...#...", "..#....", ".#.....", "#......", "#......", "#######"),
    3: (".#####.", "#.....#", "......#", "......#", "......#", "..####.",
        "......#", "......#", "......#", "......#", "#.....#", ".#####."),
    4: (".....#.", "....##.", "...#.#.", "..#..#.", ".#...#.", "#....#.",
        "#######", ".....#.", ".....#.", ".....#.", ".....#.", ".....#."),
    5: ("#######", "#......", "#......", "#......", "######.", "......#",
        "......#", "......#", "......#", "......#", "#.....#", ".#####."),
    6: ("..####.", ".#.....", "#......", "#......", "#.###..", "##...#.",
        "#.....#", "#.....#", "#.....#", "#.....#", ".#...#.", "..###.."),
    7: ("#######", "......#", ".....#.", ".....#.", "....#..", "....#..",
        "...#...", "...#...", "..#....", "..#....", "..#....", "..#...."),
    8: ("..###..", ".#...#.", "#.....#", "#.....#", ".#...#.", "..###..",
        ".#...#.", "#.....#", "#.....#", "#.....#", ".#...#.", "..###.."),
    9: ("..###..", ".#...#.", "#.....#", "#.....#", "#.....#", ".#...##",
        "..###.#", "......#", "......#", ".....#.", "....#..", ".###..."),
}  # fmt: skip


def rbf_prototypes() -> np.ndarray:
    """Returns the (10, 84) fixed RBF centres: the digit bitmaps flattened, +1 ink, -1 paper."""
    rows = [[1.0 if c == "#" else -1.0 for c in "".join(DIGIT_BITMAPS[d])] for d in range(10)]
    return np.asarray(rows, np.float32)


def lecun_squash(x: jax.Array) -> jax.Array:
    """The squashing function of Appendix A: f(a) = A tanh(S a), A = 1.7159, S = 2/3."""
    return 1.7159 * jnp.tanh(x * (2.0 / 3.0))


def lecun_uniform(fan_in: int) -> nn.initializers.Initializer:
    """Appendix A initialisation: weights uniform in (-2.4 / F, 2.4 / F), F the unit's fan-in."""
    bound = 2.4 / fan_in

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -bound, bound)

    return init


class Subsampling(nn.Module):
    """S2/S4: per map, the sum of a 2x2 window times a trainable coefficient, plus a trainable bias."""

    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        maps = x.shape[-1]
        coeff = self.param("coefficient", lecun_uniform(4), (maps,))
        bias = self.param("bias", nn.initializers.zeros, (maps,))
        total = nn.avg_pool(x, (2, 2), strides=(2, 2)) * 4.0
        return total * coeff.astype(self.dtype) + bias.astype(self.dtype)


class PartialConv(nn.Module):
    """C3: a 5x5 convolution where output map j sees only the input maps `table[j]` (Table I).

    Only the connected weights are parameters: `kernel` has shape (5, 5, sum of the table's
    row lengths), scattered into a dense kernel with zeros at the missing connections.
    """

    table: tuple[tuple[int, ...], ...]
    kernel_size: int = 5
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x):
        k, in_maps, out_maps = self.kernel_size, x.shape[-1], len(self.table)
        rows = np.concatenate([np.asarray(t) for t in self.table])
        cols = np.concatenate([np.full(len(t), j) for j, t in enumerate(self.table)])
        packed = self.param("kernel", _partial_init(self.table, k), (k, k, len(rows)))
        bias = self.param("bias", nn.initializers.zeros, (out_maps,))
        dense = jnp.zeros((k, k, in_maps, out_maps), packed.dtype).at[:, :, rows, cols].set(packed)
        y = jax.lax.conv_general_dilated(
            x.astype(self.dtype),
            dense.astype(self.dtype),
            window_strides=(1, 1),
            padding="VALID",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        return y + bias.astype(self.dtype)

    @nn.nowrap
    def macs(self, input_shape, output_shape) -> int:
        """Multiply-adds of one call: only the connected weights (Table I), per output position."""
        del input_shape
        return int(np.prod(output_shape[:-1])) * self.kernel_size**2 * sum(map(len, self.table))


def _partial_init(table, k):
    # Each C3 unit's fan-in is k*k*len(table[j]); draw its weights in the matching range.
    bounds = np.concatenate([np.full(len(t), 2.4 / (k * k * len(t))) for t in table])

    def init(key, shape, dtype=jnp.float32):
        return jax.random.uniform(key, shape, dtype, -1.0, 1.0) * jnp.asarray(bounds, dtype)

    return init


class LeNet5(nn.Module):
    """The LeNet-5 of LeCun et al. 1998 (Fig. 2), for 32x32x1 inputs.

    C1 (6@5x5) - S2 - C3 (16@5x5, Table I) - S4 - C5 (120@5x5) - F6 (84) - RBF output, every layer
    up to F6 followed by the scaled tanh. The output layer is the paper's Euclidean RBF with fixed
    +-1 centres (the digit bitmaps): logits_i = -||F6 - w_i||^2. Softmax cross-entropy on these
    logits is the paper's MAP criterion (Sec. II-C, eq. 9) without its constant rubbish class.
    The 840 centres are constants, not parameters, so the trainable count is the paper's 60,000.

    Attributes:
      conv: the convolution of C1 and C5 (flax's nn.Conv signature).
    """

    num_classes: int = 10
    dtype: Any = jnp.float32
    conv: Callable[..., nn.Module] = nn.Conv

    @nn.compact
    def __call__(self, x, train: bool = False, features_only: bool = False):
        del train  # no dropout or normalisation in the 1998 network
        x = x.astype(self.dtype)

        def conv(features, fan_in, name):
            return self.conv(
                features, (5, 5), padding="VALID", dtype=self.dtype,
                kernel_init=lecun_uniform(fan_in), name=name,
            )  # fmt: skip

        x = lecun_squash(conv(6, 25 * x.shape[-1], "c1")(x))
        x = lecun_squash(Subsampling(self.dtype, name="s2")(x))
        x = lecun_squash(PartialConv(C3_TABLE, dtype=self.dtype, name="c3")(x))
        x = lecun_squash(Subsampling(self.dtype, name="s4")(x))
        x = lecun_squash(conv(120, 25 * 16, "c5")(x))
        x = x.reshape(x.shape[0], -1)
        dense = nn.Dense(84, dtype=self.dtype, kernel_init=lecun_uniform(x.shape[-1]), name="f6")
        x = lecun_squash(dense(x))
        if features_only:
            return x
        if self.num_classes != 10:
            raise ValueError(f"lenet5's RBF output has 10 digit centres; got num_classes={self.num_classes}")
        # In float32 whatever the compute dtype: bfloat16 cannot resolve distances near 84.
        x = x.astype(jnp.float32)
        return -jnp.sum(jnp.square(x[:, None, :] - rbf_prototypes()[None]), axis=-1)


class ConvPoolNet(nn.Module):
    """conv - pool - conv - pool - dense stack: the modern LeNet-5 and the MNIST ConvNet.

    Attributes:
      conv_features: filters of the 5x5 convolutions, each followed by ReLU and 2x2 max-pool.
      padding: "VALID" (LeNet geometry on 32x32) or "SAME" (28x28 kept to 7x7).
      hidden: widths of the hidden dense layers (ReLU).
      dropout_rate: dropout before each hidden dense layer; 0 disables it.
      conv, act, pool: the convolution, activation and max-pool (flax's nn.Conv, nn.relu, nn.max_pool).
    """

    conv_features: tuple[int, ...] = (6, 16)
    padding: str = "VALID"
    hidden: tuple[int, ...] = (120, 84)
    dropout_rate: float = 0.0
    num_classes: int = 10
    dtype: Any = jnp.float32
    conv: Callable[..., nn.Module] = nn.Conv
    act: Callable = nn.relu
    pool: Callable = nn.max_pool

    @nn.compact
    def __call__(self, x, train: bool = False, features_only: bool = False):
        x = x.astype(self.dtype)
        for i, features in enumerate(self.conv_features):
            x = self.conv(features, (5, 5), padding=self.padding, dtype=self.dtype, name=f"conv{i + 1}")(x)
            x = self.pool(self.act(x), (2, 2), strides=(2, 2))
        x = x.reshape(x.shape[0], -1)
        for i, width in enumerate(self.hidden):
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
            x = self.act(nn.Dense(width, dtype=self.dtype, name=f"fc{i + 1}")(x))
        if features_only:
            return x
        return nn.Dense(self.num_classes, dtype=self.dtype, name="fc_out")(x)


# MNIST nets: 32x32 inputs (the paper's padded digits) unless stated, 10 classes.
_mnist = functools.partial(register_model, input_size=(32, 32, 1), num_classes=10, reference=LECUN_1998)

_mnist(
    "lenet5", constructor=LeNet5, num_params=60_000, gmacs=0.00032568,
    notes="partial C3 (Table I), trainable subsampling, scaled tanh; fixed RBF output (constant +-1 "
    "centres, not parameters) scored as logits -||f6 - centre||^2",
    reported={"mnist/test_error": 0.95, "mnist_distortions/test_error": 0.8},
)  # fmt: skip
_mnist(
    "lenet5_modern", dict(conv_features=(6, 16), padding="VALID", hidden=(120, 84)), constructor=ConvPoolNet,
    num_params=61_706, gmacs=0.00041652,
    notes="LeNet-5 as commonly built today: full C3, ReLU, 2x2 max-pool, dense output",
)  # fmt: skip
_mnist(
    "mnist_convnet", dict(conv_features=(32, 64), padding="SAME", hidden=(1000,), dropout_rate=0.5),
    constructor=ConvPoolNet, num_params=3_199_106, gmacs=0.0138084, input_size=(28, 28, 1),
    reference="The TensorFlow/Keras MNIST ConvNet (5x5 conv 32, pool, 5x5 conv 64, pool, fc 1000)",
    notes="dropout 0.5 before fc 1000",
)  # fmt: skip
