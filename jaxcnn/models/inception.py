"""Inception v3, Inception-v4 and Inception-ResNet-v2, built from tables of parallel branches.

Szegedy, Vanhoucke, Ioffe, Shlens, Wojna 2016, "Rethinking the Inception Architecture for Computer
Vision", CVPR (Table 1, Figs. 5-7 and 10; built as torchvision's Inception3). Szegedy, Ioffe,
Vanhoucke, Alemi 2017, "Inception-v4, Inception-ResNet and the Impact of Residual Connections on
Learning", AAAI (arXiv 1602.07261: Figs. 3-9, 15-19, Table 1).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import flax.linen as nn
import jax.numpy as jnp

from jaxcnn.layers import BatchNorm, ConvNormAct
from jaxcnn.models.googlenet import classifier_pool
from jaxcnn.registry import register_model

SZEGEDY_2016 = "Szegedy et al. 2016, Rethinking the Inception Architecture for Computer Vision"
SZEGEDY_2017 = (
    "Szegedy et al. 2017, Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning"
)
V = "VALID"


class ConvSpec(NamedTuple):
    """A conv unit of a branch: filters, kernel (int or (h, w)), stride, padding."""

    features: int
    kernel: int | tuple[int, int]
    stride: int = 1
    padding: str = "SAME"


class PoolSpec(NamedTuple):
    """A 3x3 pool of a branch: "avg" or "max"; stride 1 keeps the size (pad 1), stride 2 is VALID."""

    kind: str
    stride: int = 1


class FilterBank(NamedTuple):
    """Parallel convs on the same input, concatenated (the expanded filter banks, v3 Fig. 7)."""

    convs: tuple[ConvSpec, ...]


AVG, MAX2 = PoolSpec("avg"), PoolSpec("max", 2)


class Mixed(nn.Module):
    """Branches (each a sequence of ConvSpec / PoolSpec / FilterBank) applied to x, concatenated on
    channels; `unit` (layers.ConvNormAct) and `pool` (nn.max_pool's signature) come from the parent.

    With `residual_scale`, an Inception-ResNet block (2017, Sec. 3.2 and 3.3): the concatenation is
    projected back to the input width by a linear 1x1 conv (bias, no BatchNorm), scaled, added to x,
    then activated.
    """

    branches: tuple
    unit: Callable[..., nn.Module]
    count_include_pad: bool = True
    residual_scale: float | None = None
    up_conv: Callable[..., nn.Module] | None = None
    act: Callable = nn.relu
    pool: Callable = nn.max_pool

    @nn.compact
    def __call__(self, x):
        def conv(spec, y, name):
            kernel = (spec.kernel, spec.kernel) if isinstance(spec.kernel, int) else spec.kernel
            return self.unit(spec.features, kernel, spec.stride, spec.padding, name=name)(y)

        outputs = []
        for i, branch in enumerate(self.branches):
            y = x
            for j, op in enumerate(branch):
                name = f"branch{i}_{j}"
                if isinstance(op, FilterBank):
                    y = jnp.concatenate(
                        [conv(c, y, f"{name}{'abcd'[k]}") for k, c in enumerate(op.convs)], -1
                    )
                elif isinstance(op, PoolSpec):
                    strides, pad = (op.stride, op.stride), ((1, 1), (1, 1)) if op.stride == 1 else V
                    if op.kind == "avg":
                        y = nn.avg_pool(y, (3, 3), strides, pad, count_include_pad=self.count_include_pad)
                    else:
                        y = self.pool(y, (3, 3), strides, pad)
                else:
                    y = conv(op, y, name)
            outputs.append(y)
        y = jnp.concatenate(outputs, axis=-1)
        if self.residual_scale is None:
            return y
        y = self.up_conv(x.shape[-1], (1, 1), name="up")(y)
        return self.act(x + self.residual_scale * y)


# Inception v3 as torchvision's Inception3 (2016 paper, Table 1). Fig. 5 module (InceptionA; torchvision
# keeps a 5x5 branch), grid reductions of Fig. 10 (InceptionB/D), Fig. 6 with n=7 (InceptionC), Fig. 7
# (InceptionE).
def v3_a(pool_features: int) -> tuple:
    return (
        (ConvSpec(64, 1),),
        (ConvSpec(48, 1), ConvSpec(64, 5)),
        (ConvSpec(64, 1), ConvSpec(96, 3), ConvSpec(96, 3)),
        (AVG, ConvSpec(pool_features, 1)),
    )


def v3_c(c7: int) -> tuple:
    return (
        (ConvSpec(192, 1),),
        (ConvSpec(c7, 1), ConvSpec(c7, (1, 7)), ConvSpec(192, (7, 1))),
        (
            ConvSpec(c7, 1),
            ConvSpec(c7, (7, 1)),
            ConvSpec(c7, (1, 7)),
            ConvSpec(c7, (7, 1)),
            ConvSpec(192, (1, 7)),
        ),
        (AVG, ConvSpec(192, 1)),
    )


V3_B = ((ConvSpec(384, 3, 2, V),), (ConvSpec(64, 1), ConvSpec(96, 3), ConvSpec(96, 3, 2, V)), (MAX2,))
V3_D = (
    (ConvSpec(192, 1), ConvSpec(320, 3, 2, V)),
    (ConvSpec(192, 1), ConvSpec(192, (1, 7)), ConvSpec(192, (7, 1)), ConvSpec(192, 3, 2, V)),
    (MAX2,),
)
V3_E = (
    (ConvSpec(320, 1),),
    (ConvSpec(384, 1), FilterBank((ConvSpec(384, (1, 3)), ConvSpec(384, (3, 1))))),
    (ConvSpec(448, 1), ConvSpec(384, 3), FilterBank((ConvSpec(384, (1, 3)), ConvSpec(384, (3, 1))))),
    (AVG, ConvSpec(192, 1)),
)
INCEPTION_V3 = (
    ("Mixed_5b", v3_a(32)), ("Mixed_5c", v3_a(64)), ("Mixed_5d", v3_a(64)),
    ("Mixed_6a", V3_B),
    ("Mixed_6b", v3_c(128)), ("Mixed_6c", v3_c(160)), ("Mixed_6d", v3_c(160)), ("Mixed_6e", v3_c(192)),
    ("Mixed_7a", V3_D), ("Mixed_7b", V3_E), ("Mixed_7c", V3_E),
)  # fmt: skip


def _pad_to(x, size: int):
    """Zero-pads the spatial dims of x up to `size` (no-op when already that large)."""
    ph, pw = max(0, size - x.shape[1]), max(0, size - x.shape[2])
    return jnp.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))


class InceptionAux(nn.Module):
    """The auxiliary head on Mixed_6e (2016, Sec. 4; torchvision's InceptionAux, BN in the convs).

    5x5/3 avg-pool, 1x1 conv 128, 5x5 conv 768 (VALID: 1x1 at 299), global pool, linear. Below
    299 (Mixed_6e under 17x17, where torchvision's head fails) the pool is skipped on maps smaller
    than 5 and the map is zero-padded to 5x5 before the 5x5 conv, so small inputs train too.
    """

    num_classes: int
    conv: Callable[..., nn.Module]
    norm: Callable[..., nn.Module]
    dense: Callable[..., nn.Module]
    act: Callable = nn.relu

    @nn.compact
    def __call__(self, x):
        unit = functools.partial(ConvNormAct, conv=self.conv, norm=self.norm, act=self.act)
        if min(x.shape[1:3]) >= 5:
            x = nn.avg_pool(x, (5, 5), (3, 3))
        x = unit(128, (1, 1), name="conv0")(x)
        conv1 = functools.partial(self.conv, kernel_init=nn.initializers.normal(0.01))
        x = unit(768, (5, 5), padding=V, conv=conv1, name="conv1")(_pad_to(x, 5))
        x = jnp.mean(x, axis=(1, 2))
        return self.dense(self.num_classes, kernel_init=nn.initializers.normal(0.001), name="fc")(x)


class Inception3(nn.Module):
    """Inception v3 (2016, Table 1) as torchvision's Inception3, for 299x299 inputs.

    Attributes:
      aux_logits: build the auxiliary head on Mixed_6e; in training the model returns
        `(logits, (aux_logits,))`. It is created at init in any mode.
      dropout_rate: before the classifier (torchvision: 0.5).
      classifier_pool: on maps larger than 8x8, "dense" slides the 8x8 pool (the classifier's scores
        averaged) or "adaptive" takes the global mean (torchvision); googlenet.classifier_pool.
      conv, norm, act, pool: the convolution, BatchNorm, activation and max-pool (flax's nn.Conv,
        layers.BatchNorm, nn.relu, nn.max_pool).
    """

    num_classes: int = 1000
    dtype: Any = jnp.float32
    aux_logits: bool = True
    dropout_rate: float = 0.5
    classifier_pool: str = "dense"
    conv: Callable[..., nn.Module] = nn.Conv
    norm: Callable[..., nn.Module] = BatchNorm
    act: Callable = nn.relu
    pool: Callable = nn.max_pool

    @nn.compact
    def __call__(self, x, train: bool = False, features_only: bool = False):
        # torchvision: BN eps 1e-3, convs without bias, init trunc_normal(std=0.1, a=-2, b=2), whose
        # bounds are 20 sigma away: a plain normal.
        init = nn.initializers.normal(0.1)
        conv = functools.partial(self.conv, use_bias=False, dtype=self.dtype, kernel_init=init)
        norm = functools.partial(self.norm, use_running_average=not train, epsilon=1e-3, dtype=self.dtype)
        dense = functools.partial(
            nn.Dense, dtype=self.dtype, kernel_init=init, bias_init=nn.initializers.zeros
        )
        unit = functools.partial(ConvNormAct, conv=conv, norm=norm, act=self.act)
        with_aux = self.aux_logits and not features_only and (train or self.is_initializing())

        input_shape, x = x.shape, x.astype(self.dtype)
        x = unit(32, (3, 3), 2, V, name="Conv2d_1a_3x3")(x)
        x = unit(32, (3, 3), 1, V, name="Conv2d_2a_3x3")(x)
        x = unit(64, (3, 3), name="Conv2d_2b_3x3")(x)
        x = self.pool(x, (3, 3), (2, 2))
        x = unit(80, (1, 1), 1, V, name="Conv2d_3b_1x1")(x)
        x = unit(192, (3, 3), 1, V, name="Conv2d_4a_3x3")(x)
        x = self.pool(x, (3, 3), (2, 2))
        aux = ()
        for name, branches in INCEPTION_V3:
            x = Mixed(branches, unit, act=self.act, pool=self.pool, name=name)(x)
            if with_aux and name == "Mixed_6e":
                # Out of training the head is only initialised, on an empty batch (no MACs).
                head = InceptionAux(self.num_classes, conv, norm, dense, self.act, name="AuxLogits")
                aux = (head(x if train else x[:0]),)
        x = classifier_pool(x, input_shape, 8, self.classifier_pool)  # Table 1: 8x8 pool (8x8 map at 299)
        if features_only:
            return x
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = dense(self.num_classes, name="fc")(x)
        return (x, aux) if train and self.aux_logits else x


# 2017 paper. Stem of both networks (Fig. 3): 299x299x3 -> 35x35x384; 1x7 before 7x1 as in TF-slim.
STEM_3A = ((MAX2,), (ConvSpec(96, 3, 2, V),))
STEM_4A = (
    (ConvSpec(64, 1), ConvSpec(96, 3, 1, V)),
    (ConvSpec(64, 1), ConvSpec(64, (1, 7)), ConvSpec(64, (7, 1)), ConvSpec(96, 3, 1, V)),
)
STEM_5A = ((ConvSpec(192, 3, 2, V),), (MAX2,))

# Inception-v4's modules (Figs. 4, 5, 6, 8), branches in the order of the authors' TF-slim code.
V4_A = (
    (ConvSpec(96, 1),),
    (ConvSpec(64, 1), ConvSpec(96, 3)),
    (ConvSpec(64, 1), ConvSpec(96, 3), ConvSpec(96, 3)),
    (AVG, ConvSpec(96, 1)),
)
V4_B = (
    (ConvSpec(384, 1),),
    (ConvSpec(192, 1), ConvSpec(224, (1, 7)), ConvSpec(256, (7, 1))),
    (
        ConvSpec(192, 1),
        ConvSpec(192, (7, 1)),
        ConvSpec(224, (1, 7)),
        ConvSpec(224, (7, 1)),
        ConvSpec(256, (1, 7)),
    ),
    (AVG, ConvSpec(128, 1)),
)
V4_C = (
    (ConvSpec(256, 1),),
    (ConvSpec(384, 1), FilterBank((ConvSpec(256, (1, 3)), ConvSpec(256, (3, 1))))),
    (
        ConvSpec(384, 1),
        ConvSpec(448, (3, 1)),
        ConvSpec(512, (1, 3)),
        FilterBank((ConvSpec(256, (1, 3)), ConvSpec(256, (3, 1)))),
    ),
    (AVG, ConvSpec(256, 1)),
)
V4_REDUCTION_B = (
    (ConvSpec(192, 1), ConvSpec(192, 3, 2, V)),
    (ConvSpec(256, 1), ConvSpec(256, (1, 7)), ConvSpec(320, (7, 1)), ConvSpec(320, 3, 2, V)),
    (MAX2,),
)

# Inception-ResNet-v2's modules (Figs. 16, 17, 19, 18): branches before the linear 1x1 up-projection.
IR_A = (
    (ConvSpec(32, 1),),
    (ConvSpec(32, 1), ConvSpec(32, 3)),
    (ConvSpec(32, 1), ConvSpec(48, 3), ConvSpec(64, 3)),
)
IR_B = ((ConvSpec(192, 1),), (ConvSpec(128, 1), ConvSpec(160, (1, 7)), ConvSpec(192, (7, 1))))
IR_C = ((ConvSpec(192, 1),), (ConvSpec(192, 1), ConvSpec(224, (1, 3)), ConvSpec(256, (3, 1))))
IR_REDUCTION_B = (
    (ConvSpec(256, 1), ConvSpec(384, 3, 2, V)),
    (ConvSpec(256, 1), ConvSpec(288, 3, 2, V)),
    (ConvSpec(256, 1), ConvSpec(288, 3), ConvSpec(320, 3, 2, V)),
    (MAX2,),
)


def reduction_a(k: int, l: int, m: int, n: int) -> tuple:  # noqa: E741  (the paper's letters)
    """Fig. 7, with the filter numbers k, l, m, n of Table 1."""
    return ((ConvSpec(n, 3, 2, V),), (ConvSpec(k, 1), ConvSpec(l, 3), ConvSpec(m, 3, 2, V)), (MAX2,))


class InceptionV4(nn.Module):
    """Inception-v4 (Fig. 9) and Inception-ResNet-v2 (Fig. 15): stem, A x d1, Reduction-A, B x d2,
    Reduction-B, C x d3, global average pool, dropout, linear; 299x299 inputs.

    Attributes:
      blocks: the A, B and C module tables (v4: Figs. 4-6; Inception-ResNet-v2: Figs. 16, 17, 19).
      depths: how many of each (v4: 4, 7, 3; Inception-ResNet: 5, 10, 5).
      reduction_a: (k, l, m, n) of Fig. 7 (Table 1).
      reduction_b: the Reduction-B table (v4: Fig. 8; Inception-ResNet-v2: Fig. 18).
      residual_scales: None for v4; for Inception-ResNet the scale of the residuals of the A, B and
        C blocks (Sec. 3.3: "between 0.1 and 0.3").
      dropout_rate: before the classifier (keep 0.8, Figs. 9 and 15).
      conv, norm, act, pool: the convolution, BatchNorm, activation and max-pool (flax's nn.Conv,
        layers.BatchNorm, nn.relu, nn.max_pool).
    """

    num_classes: int = 1000
    dtype: Any = jnp.float32
    blocks: tuple = (V4_A, V4_B, V4_C)
    depths: tuple[int, int, int] = (4, 7, 3)
    reduction_a: tuple[int, int, int, int] = (192, 224, 256, 384)
    reduction_b: tuple = V4_REDUCTION_B
    residual_scales: tuple[float, float, float] | None = None
    dropout_rate: float = 0.2
    conv: Callable[..., nn.Module] = nn.Conv
    norm: Callable[..., nn.Module] = BatchNorm
    act: Callable = nn.relu
    pool: Callable = nn.max_pool

    @nn.compact
    def __call__(self, x, train: bool = False, features_only: bool = False):
        # The paper is silent on init and BN constants: the authors' TF-slim code (He-normal fan-in
        # convs, BN eps 1e-3, Glorot-uniform classifier).
        init = dict(kernel_init=nn.initializers.he_normal(), bias_init=nn.initializers.zeros)
        conv = functools.partial(self.conv, use_bias=False, dtype=self.dtype, **init)
        norm = functools.partial(self.norm, use_running_average=not train, epsilon=1e-3, dtype=self.dtype)
        unit = functools.partial(ConvNormAct, conv=conv, norm=norm, act=self.act)
        # count_include_pad=False: TF's SAME avg-pool
        mixed = functools.partial(Mixed, unit=unit, count_include_pad=False, act=self.act, pool=self.pool)
        up_conv = functools.partial(self.conv, use_bias=True, dtype=self.dtype, **init)

        input_shape, x = x.shape, x.astype(self.dtype)
        x = unit(32, (3, 3), 2, V, name="stem_conv1")(x)
        x = unit(32, (3, 3), 1, V, name="stem_conv2")(x)
        x = unit(64, (3, 3), name="stem_conv3")(x)
        x = mixed(STEM_3A, name="stem_mixed_3a")(x)
        x = mixed(STEM_4A, name="stem_mixed_4a")(x)
        x = mixed(STEM_5A, name="stem_mixed_5a")(x)
        reductions = (reduction_a(*self.reduction_a), self.reduction_b, None)
        for stage, (branches, depth, reduction) in enumerate(zip(self.blocks, self.depths, reductions)):
            letter = "abc"[stage]
            residual = {}
            if self.residual_scales is not None:
                residual = dict(residual_scale=self.residual_scales[stage], up_conv=up_conv)
            for i in range(depth):
                x = mixed(branches, **residual, name=f"inception_{letter}{i + 1}")(x)
            if reduction is not None:
                x = mixed(reduction, name=f"reduction_{letter}")(x)
        x = classifier_pool(x, input_shape, 8)  # Fig. 9 / 15: average pooling of the 8x8 map at 299
        if features_only:
            return x
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        dense_init = nn.initializers.xavier_uniform()
        return nn.Dense(self.num_classes, dtype=self.dtype, kernel_init=dense_init, name="fc")(x)


_inception = functools.partial(
    register_model, input_size=(299, 299, 3), num_classes=1000, small_input_size=75
)

_inception(
    "inception_v3", constructor=Inception3, reference=SZEGEDY_2016, num_params=27_161_264, gmacs=5.713,
    notes="torchvision's Inception3: BN eps 1e-3, convs without bias, avg-pools counting the padding, "
    "dropout 0.5, aux head on Mixed_6e (default on, as torchvision). num_params includes the aux head "
    "(torchvision counts without it); gmacs is the main path. Aux head below 299: pool skipped on "
    "maps under 5x5, map zero-padded to 5x5 before its 5x5 conv (torchvision's fails there); "
    "unchanged at 299 and above",
    reported={"imagenet/top1_error": 21.2, "imagenet/top5_error": 5.6},
)  # fmt: skip
_inception(
    "inception_v4", constructor=InceptionV4, reference=SZEGEDY_2017, num_params=42_679_816, gmacs=12.254,
    notes="Figs. 3-9, Reduction-A k=192 l=224 m=256 n=384 (Table 1); BN (eps 1e-3, with scale) after "
    "every conv, no conv biases, avg-pools excluding the padding (TF SAME), dropout 0.2 (keep 0.8). "
    "Equals timm's inception_v4 count. Branch order and 1x7/7x1 order of the authors' TF-slim code "
    "(same counts either way)",
    reported={"imagenet/top1_error": 20.0, "imagenet/top5_error": 5.0},  # Table 2, single crop
)  # fmt: skip
_inception(
    "inception_resnet_v2",
    dict(blocks=(IR_A, IR_B, IR_C), depths=(5, 10, 5), reduction_a=(256, 256, 384, 384),
         reduction_b=IR_REDUCTION_B, residual_scales=(0.17, 0.1, 0.2)),
    constructor=InceptionV4, reference=SZEGEDY_2017, num_params=32_433_928, gmacs=9.258,
    notes="The paper's network: stem of Fig. 3, then Fig. 15's 5 / 10 / 5 blocks of Figs. 16, 17, 19, "
    "Reduction-A k=l=256 m=n=384 (Table 1) and Reduction-B of Fig. 18: widths 384 -> 1152 -> 2144. "
    "Up-projections return to the input width (Figs. 17 and 19 print 1154 and 2048, which cannot be "
    "added to the 1152 and 2144 maps): linear 1x1 with bias, no BN; residuals scaled 0.17 / 0.1 / 0.2 "
    "(TF-slim; Sec. 3.3 says 0.1-0.3), ReLU after each sum. BN eps 1e-3 with scale, no other conv "
    "biases, dropout 0.2. timm's larger count is the TF-slim release, not the paper's figures: an "
    "Inception-v3 stem plus Mixed_5b (320 maps) instead of Fig. 3, 10 / 20 / 10 blocks (widths 320 / "
    "1088 / 2080), a 1x1 conv to 1536 before the pool and no ReLU after the last block; the same "
    "block tables assembled that way give timm's count exactly (tests)",
    reported={"imagenet/top1_error": 19.9, "imagenet/top5_error": 4.9},  # Table 2, single crop
)  # fmt: skip
