"""MobileNet v1 (depthwise-separable convolutions) and MobileNet v2 (inverted residuals).

Howard et al. 2017, "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications", arXiv:1704.04861, Sec. 3.1-3.3, Table 1 (body), Table 2 (cost per layer type);
Sandler, Howard, Zhu, Zhmoginov, Chen 2018, "MobileNetV2: Inverted Residuals and Linear
Bottlenecks", CVPR, Sec. 3-4, Table 1 (block), Table 2 (body). v2 follows torchvision's
`mobilenet_v2` (ReLU6, last conv 1280, dropout 0.2).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxcnn.layers import BatchNorm
from jaxcnn.registry import register_model

HOWARD_2017 = "Howard et al. 2017, MobileNets: Efficient Convolutional Neural Networks for Mobile Vision"
SANDLER_2018 = "Sandler et al. 2018, MobileNetV2: Inverted Residuals and Linear Bottlenecks"

# Table 1 of Howard et al. after the stem: (stride of the depthwise 3x3, pointwise filters).
# The table prints s2 for the last depthwise layer, but its input and output are both 7x7: s1.
MOBILENET_V1_BODY = (
    (1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512),
    (1, 512), (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024),
)  # fmt: skip

# Table 2 of Sandler et al.: (expansion t, output channels c, repeats n, first stride s).
MOBILENET_V2_BODY = (
    (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
    (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1),
)  # fmt: skip

_PAD1 = ((1, 1), (1, 1))


def _make_divisible(value: float, divisor: int = 8) -> int:
    # Channel rounding of the reference implementation: nearest multiple of 8, never below 90%.
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


# He normal (fan_out) convolutions, BN gamma 1 / beta 0, fc N(0, 0.01): torchvision's choice;
# neither paper states an initialisation.
CONV_INIT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
FC_INIT = dict(kernel_init=nn.initializers.normal(0.01), bias_init=nn.initializers.zeros)


class DepthwiseSeparable(nn.Module):
    """3x3 depthwise conv-BN-act then 1x1 pointwise conv-BN-act (Howard et al., Fig. 3)."""

    features: int
    stride: int
    conv: Callable[..., nn.Module]
    norm: Callable[..., nn.Module]
    act: Callable[[Any], Any]

    @nn.compact
    def __call__(self, x):
        channels = x.shape[-1]
        x = self.conv(channels, (3, 3), (self.stride,) * 2, _PAD1, feature_group_count=channels, name="dw")(x)
        x = self.act(self.norm(name="dw_bn")(x))
        x = self.conv(self.features, (1, 1), name="pw")(x)
        return self.act(self.norm(name="pw_bn")(x))


class MobileNetV1(nn.Module):
    """MobileNet (Howard et al. 2017, Table 1): 3x3/2 conv, 13 depthwise-separable layers, pool, fc.

    Attributes:
      width_multiplier: alpha of Sec. 3.3; scales every layer's filters.
      body: (depthwise stride, pointwise filters) per depthwise-separable layer.
      dropout_rate: dropout before the fc layer (the paper uses none).
      conv, norm, act: the convolution, BatchNorm and activation (flax's nn.Conv, layers.BatchNorm,
        nn.relu: every layer is followed by BN and ReLU, Sec. 3.2).
    """

    width_multiplier: float = 1.0
    body: tuple[tuple[int, int], ...] = MOBILENET_V1_BODY
    dropout_rate: float = 0.0
    num_classes: int = 1000
    dtype: Any = jnp.float32
    conv: Callable[..., nn.Module] = nn.Conv
    norm: Callable[..., nn.Module] = BatchNorm
    act: Callable[[Any], Any] = nn.relu

    @nn.compact
    def __call__(self, x, train: bool = False, features_only: bool = False):
        conv = functools.partial(self.conv, use_bias=False, dtype=self.dtype, kernel_init=CONV_INIT)
        norm = functools.partial(self.norm, use_running_average=not train, dtype=self.dtype)
        act = self.act
        width = lambda c: int(c * self.width_multiplier)

        x = x.astype(self.dtype)
        x = act(norm(name="conv1_bn")(conv(width(32), (3, 3), (2, 2), _PAD1, name="conv1")(x)))
        for i, (stride, features) in enumerate(self.body, start=1):
            x = DepthwiseSeparable(width(features), stride, conv, norm, act, name=f"conv_ds{i}")(x)
        x = jnp.mean(x, axis=(1, 2))  # the 7x7 average pool of Table 1
        if features_only:
            return x
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return nn.Dense(self.num_classes, dtype=self.dtype, **FC_INIT, name="fc")(x)


class InvertedResidual(nn.Module):
    """Bottleneck residual block (Sandler et al., Table 1): 1x1 expand-ReLU6, 3x3 depthwise-ReLU6,
    1x1 linear projection; the input is added when stride is 1 and channels match (Sec. 4, Fig. 4d)."""

    features: int
    stride: int
    expansion: int
    conv: Callable[..., nn.Module]
    norm: Callable[..., nn.Module]
    act: Callable[[Any], Any]

    @nn.compact
    def __call__(self, x):
        channels = x.shape[-1]
        hidden = channels * self.expansion
        y = x
        if self.expansion != 1:
            y = self.act(self.norm(name="expand_bn")(self.conv(hidden, (1, 1), name="expand")(y)))
        y = self.conv(hidden, (3, 3), (self.stride,) * 2, _PAD1, feature_group_count=hidden, name="dw")(y)
        y = self.act(self.norm(name="dw_bn")(y))
        # Linear bottleneck (Sec. 3.2): no non-linearity after the projection.
        y = self.norm(name="project_bn")(self.conv(self.features, (1, 1), name="project")(y))
        if self.stride == 1 and channels == self.features:
            return x + y
        return y


class MobileNetV2(nn.Module):
    """MobileNetV2 (Sandler et al. 2018, Table 2), torchvision's layout and names `features_i`.

    Attributes:
      width_multiplier: scales every layer's channels (rounded to multiples of 8); the last conv
        keeps 1280 channels below 1.0 (Sec. 6.1).
      body: (expansion t, channels c, repeats n, first stride s) per stage.
      last_features: channels of the final 1x1 conv.
      dropout_rate: dropout before the classifier (0.2 as torchvision).
      conv, norm, act: the convolution, BatchNorm and activation (flax's nn.Conv, layers.BatchNorm,
        and ReLU6, robust in low-precision computation, Sandler et al., Sec. 4).
    """

    width_multiplier: float = 1.0
    body: tuple[tuple[int, int, int, int], ...] = MOBILENET_V2_BODY
    last_features: int = 1280
    dropout_rate: float = 0.2
    num_classes: int = 1000
    dtype: Any = jnp.float32
    conv: Callable[..., nn.Module] = nn.Conv
    norm: Callable[..., nn.Module] = BatchNorm
    act: Callable[[Any], Any] = nn.relu6

    @nn.compact
    def __call__(self, x, train: bool = False, features_only: bool = False):
        conv = functools.partial(self.conv, use_bias=False, dtype=self.dtype, kernel_init=CONV_INIT)
        norm = functools.partial(self.norm, use_running_average=not train, dtype=self.dtype)
        act = self.act
        width = lambda c: _make_divisible(c * self.width_multiplier)

        x = x.astype(self.dtype)
        x = act(norm(name="features_0_bn")(conv(width(32), (3, 3), (2, 2), _PAD1, name="features_0")(x)))
        index = 1
        for expansion, channels, repeats, stride in self.body:
            for r in range(repeats):
                block = InvertedResidual(
                    width(channels), stride if r == 0 else 1, expansion, conv, norm, act,
                    name=f"features_{index}",
                )  # fmt: skip
                x = block(x)
                index += 1
        last = _make_divisible(self.last_features * max(1.0, self.width_multiplier))
        x = act(norm(name=f"features_{index}_bn")(conv(last, (1, 1), name=f"features_{index}")(x)))
        x = jnp.mean(x, axis=(1, 2))
        if features_only:
            return x
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return nn.Dense(self.num_classes, dtype=self.dtype, **FC_INIT, name="classifier")(x)


_mobilenet = functools.partial(register_model, input_size=(224, 224, 3), num_classes=1000)

_mobilenet(
    "mobilenet_v1", dict(width_multiplier=1.0), constructor=MobileNetV1, reference=HOWARD_2017,
    num_params=4_231_976, gmacs=0.569, reported={"imagenet/top1_error": 29.4},
    notes="width 1.0 at 224 (Table 1; the last depthwise layer has stride 1); BN + ReLU after every "
    "conv, convs without bias, fc with bias; symmetric padding 1 (the TF original pads SAME: same "
    "sizes); no dropout",
)  # fmt: skip
_mobilenet(
    "mobilenet_v2", dict(width_multiplier=1.0), constructor=MobileNetV2, reference=SANDLER_2018,
    num_params=3_504_872, gmacs=0.301, reported={"imagenet/top1_error": 28.0},
    notes="torchvision layout: ReLU6, linear bottlenecks, last conv 1280, dropout 0.2, fc with bias",
)  # fmt: skip
