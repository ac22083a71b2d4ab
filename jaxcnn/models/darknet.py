"""Darknet-19 (YOLO9000) and Darknet-53 (YOLOv3) ImageNet classifiers.

Redmon & Farhadi 2017, "YOLO9000: Better, Faster, Stronger", CVPR, Sec. 3 "Faster" (Darknet-19,
Table 6); Redmon & Farhadi 2018, "YOLOv3: An Incremental Improvement", arXiv:1804.02767, Sec. 2.4
(Darknet-53, Table 1; comparison at 256x256, Table 2).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxcnn.layers import BatchNorm, ConvNormAct
from jaxcnn.registry import register_model

REDMON_2017 = "Redmon & Farhadi 2017, YOLO9000: Better, Faster, Stronger"
REDMON_2018 = "Redmon & Farhadi 2018, YOLOv3: An Incremental Improvement"

# Table 6 of YOLO9000 before the classifier: (filters, kernel size) for a conv, "M" for a 2x2/2
# max-pool. 1x1 convolutions halve the channels between the 3x3 ones (Sec. 3, "Darknet-19").
DARKNET19_BODY = (
    (32, 3), "M", (64, 3), "M", (128, 3), (64, 1), (128, 3), "M", (256, 3), (128, 1), (256, 3), "M",
    (512, 3), (256, 1), (512, 3), (256, 1), (512, 3), "M",
    (1024, 3), (512, 1), (1024, 3), (512, 1), (1024, 3),
)  # fmt: skip

# darknet's own initialisation (the papers give none): uniform in +-sqrt(2 / fan_in).
DARKNET_INIT = nn.initializers.variance_scaling(2.0 / 3.0, "fan_in", "uniform")
# Every darknet conv but the classifier is followed by BN and leaky ReLU (slope 0.1).
LEAKY_RELU = functools.partial(nn.leaky_relu, negative_slope=0.1)


def _units(module: nn.Module, train: bool):
    """unit(features, kernel, stride, name): darknet's convolutional layer, conv (no bias, padding
    k // 2 as darknet's pad=1) - BN - leaky ReLU, from the model's conv, norm and act."""
    conv = functools.partial(module.conv, use_bias=False, dtype=module.dtype, kernel_init=DARKNET_INIT)
    norm = functools.partial(module.norm, use_running_average=not train, dtype=module.dtype)

    def unit(features, kernel, stride, name):
        pad = ((kernel // 2,) * 2,) * 2
        return ConvNormAct(features, (kernel, kernel), stride, pad, conv, norm, module.act, name=name)

    return unit


def _classify(module: nn.Module, x, name):
    # 1x1 conv with bias to the classes, then the global average pool.
    x = module.conv(module.num_classes, (1, 1), dtype=module.dtype, kernel_init=DARKNET_INIT, name=name)(x)
    return jnp.mean(x, axis=(1, 2))


class Darknet19(nn.Module):
    """Darknet-19 (Table 6): 18 conv-BN-leaky layers with 5 max-pools, a 1x1 conv to the classes,
    global average pool. `features_only` returns the pooled 1024 maps (the classifier is linear,
    so pooling first and then applying it gives the same logits).

    Attributes:
      body: the layers before the classifier, (filters, kernel) or "M" (2x2/2 max-pool).
      conv, norm, act, pool: the convolution, BatchNorm, activation and max-pool (flax's nn.Conv,
        layers.BatchNorm, leaky ReLU with slope 0.1, nn.max_pool).
    """

    body: tuple[Any, ...] = DARKNET19_BODY
    num_classes: int = 1000
    dtype: Any = jnp.float32
    conv: Callable[..., nn.Module] = nn.Conv
    norm: Callable[..., nn.Module] = BatchNorm
    act: Callable[[Any], Any] = LEAKY_RELU
    pool: Callable = nn.max_pool

    @nn.compact
    def __call__(self, x, train: bool = False, features_only: bool = False):
        unit = _units(self, train)
        x = x.astype(self.dtype)
        index = 0
        for layer in self.body:
            if layer == "M":
                x = self.pool(x, (2, 2), strides=(2, 2))
                continue
            index += 1
            features, kernel = layer
            x = unit(features, kernel, 1, name=f"conv{index}")(x)
        if features_only:
            return jnp.mean(x, axis=(1, 2))
        # The 19th conv: 1x1 to the classes, linear with a bias and no BN, then the global pool.
        return _classify(self, x, f"conv{index + 1}")


class Residual(nn.Module):
    """Darknet-53 residual unit (YOLOv3 Table 1): 1x1 conv to half the channels, 3x3 conv back, add.

    `unit` is `_units`' darknet convolutional layer, bound by the parent.
    """

    unit: Callable[..., nn.Module]

    @nn.compact
    def __call__(self, x):
        channels = x.shape[-1]
        y = self.unit(channels // 2, 1, 1, name="conv1")(x)
        y = self.unit(channels, 3, 1, name="conv2")(y)
        return x + y


class Darknet53(nn.Module):
    """Darknet-53 (YOLOv3 Table 1): a 3x3 conv, then per stage a 3x3/2 conv and residual units;
    fc (as a 1x1 conv) and global average pool. `features_only` returns the pooled 1024 maps.

    Attributes:
      stem_features: filters of the first 3x3 conv.
      stage_blocks: residual units per stage; each stage doubles the channels and halves the size.
      conv, norm, act: the convolution, BatchNorm and activation (flax's nn.Conv, layers.BatchNorm,
        leaky ReLU with slope 0.1).
    """

    stem_features: int = 32
    stage_blocks: tuple[int, ...] = (1, 2, 8, 8, 4)
    num_classes: int = 1000
    dtype: Any = jnp.float32
    conv: Callable[..., nn.Module] = nn.Conv
    norm: Callable[..., nn.Module] = BatchNorm
    act: Callable[[Any], Any] = LEAKY_RELU

    @nn.compact
    def __call__(self, x, train: bool = False, features_only: bool = False):
        unit = _units(self, train)
        x = x.astype(self.dtype)
        features = self.stem_features
        x = unit(features, 3, 1, name="conv1")(x)
        for s, blocks in enumerate(self.stage_blocks, start=1):
            features *= 2
            x = unit(features, 3, 2, name=f"down{s}")(x)
            for b in range(1, blocks + 1):
                x = Residual(unit, name=f"stage{s}_block{b}")(x)
        if features_only:
            return jnp.mean(x, axis=(1, 2))
        # Table 1's "Avgpool, Connected 1000" as darknet runs it: the 1x1 conv (= the fc, with its
        # bias) before the pool. Linear, so the logits are the same; the paper's 18.7 Bn FLOPs
        # (2 x 9.350 G multiply-adds) count the classifier at 8x8.
        return _classify(self, x, "fc")


_darknet = functools.partial(register_model, num_classes=1000, small_input_size=32)

_darknet(
    "darknet19", dict(body=DARKNET19_BODY), constructor=Darknet19, reference=REDMON_2017,
    num_params=20_842_376, gmacs=2.791, input_size=(224, 224, 3),
    notes="Table 6: 18 conv-BN-leaky(0.1) layers (no bias) + 5 max-pools, conv19 1x1 to 1000 classes "
    "with bias and no BN, global average pool. The paper's FLOPs count 2 per multiply-add",
    reported={"imagenet/top1_error": 27.1, "imagenet/top5_error": 8.8},  # Sec. 4: 72.9 / 91.2 accuracy
)  # fmt: skip
_darknet(
    "darknet53", dict(stem_features=32, stage_blocks=(1, 2, 8, 8, 4)), constructor=Darknet53,
    reference=REDMON_2018, num_params=41_609_928, gmacs=9.350, input_size=(256, 256, 3),
    notes="Table 1: conv-BN-leaky(0.1) layers without bias, residual units 1, 2, 8, 8, 4, fc 1000 "
    "with bias run as a 1x1 conv before the global average pool (as darknet). Input 256 as the "
    "paper's comparison (Table 2), whose FLOPs count 2 per multiply-add",
    reported={"imagenet/top1_error": 22.8, "imagenet/top5_error": 6.2},  # Table 2: 77.2 / 93.8 accuracy
)  # fmt: skip
