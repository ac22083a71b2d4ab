"""DenseNet-BC for ImageNet.

Huang, Liu, van der Maaten, Weinberger 2017, "Densely Connected Convolutional Networks", CVPR,
Sec. 3 (dense connectivity, composite function, bottleneck and compression), Table 1 (ImageNet
architectures), Table 3 (ImageNet errors). Layer conventions as torchvision's `densenet121`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxcnn.layers import BatchNorm
from jaxcnn.registry import register_model

HUANG_2017 = "Huang et al. 2017, Densely Connected Convolutional Networks"


class DenseLayer(nn.Module):
    """One bottleneck layer H_l: BN-ReLU-Conv(1x1, bn_size*k)-BN-ReLU-Conv(3x3, k) (Sec. 3)."""

    growth_rate: int
    bn_size: int
    drop_rate: float
    conv: Callable[..., nn.Module]
    norm: Callable[..., nn.Module]
    act: Callable[[Any], Any]

    @nn.compact
    def __call__(self, x, train: bool = False):
        y = self.act(self.norm(name="norm1")(x))
        y = self.conv(self.bn_size * self.growth_rate, (1, 1), name="conv1")(y)
        y = self.act(self.norm(name="norm2")(y))
        y = self.conv(self.growth_rate, (3, 3), padding=((1, 1), (1, 1)), name="conv2")(y)
        y = nn.Dropout(self.drop_rate, deterministic=not train)(y)
        # Dense connectivity (Sec. 3, eq. 2): the new k maps join all earlier ones.
        return jnp.concatenate([x, y], axis=-1)


class Transition(nn.Module):
    """Transition layer: BN-ReLU-Conv(1x1, compressed)-AvgPool(2x2, 2) (Sec. 3, compression)."""

    features: int
    conv: Callable[..., nn.Module]
    norm: Callable[..., nn.Module]
    act: Callable[[Any], Any]

    @nn.compact
    def __call__(self, x):
        x = self.act(self.norm(name="norm")(x))
        x = self.conv(self.features, (1, 1), name="conv")(x)
        return nn.avg_pool(x, (2, 2), strides=(2, 2))


class DenseNet(nn.Module):
    """DenseNet-BC (Table 1): stem, dense blocks joined by transitions, final BN, pool, fc.

    Attributes:
      block_layers: dense layers per block, e.g. (6, 12, 24, 16) for DenseNet-121.
      growth_rate: k, the feature maps each layer adds.
      stem_features: filters of the 7x7/2 stem convolution (2k in Table 1).
      bn_size: bottleneck width factor: the 1x1 conv produces bn_size * k maps (4k, Sec. 3).
      compression: theta, the fraction of maps a transition keeps (0.5 for DenseNet-BC).
      drop_rate: dropout after each 3x3 conv (0 on ImageNet; 0.2 for C10/C100 without augmentation).
      conv, norm, act, pool: the convolution, BatchNorm, activation and max-pool (flax's nn.Conv,
        layers.BatchNorm, nn.relu, nn.max_pool).
    """

    block_layers: tuple[int, ...] = (6, 12, 24, 16)
    growth_rate: int = 32
    stem_features: int = 64
    bn_size: int = 4
    compression: float = 0.5
    drop_rate: float = 0.0
    num_classes: int = 1000
    dtype: Any = jnp.float32
    conv: Callable[..., nn.Module] = nn.Conv
    norm: Callable[..., nn.Module] = BatchNorm
    act: Callable[[Any], Any] = nn.relu
    pool: Callable = nn.max_pool

    @nn.compact
    def __call__(self, x, train: bool = False, features_only: bool = False):
        # He et al. 2015 normal initialisation for convolutions, as torchvision; BN gamma 1, beta 0.
        conv = functools.partial(
            self.conv, use_bias=False, dtype=self.dtype, kernel_init=nn.initializers.he_normal()
        )
        norm = functools.partial(self.norm, use_running_average=not train, dtype=self.dtype)
        act = self.act

        x = x.astype(self.dtype)
        x = conv(self.stem_features, (7, 7), strides=(2, 2), padding=((3, 3), (3, 3)), name="conv0")(x)
        x = act(norm(name="norm0")(x))
        x = self.pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))

        features = self.stem_features
        for b, layers in enumerate(self.block_layers, start=1):
            for i in range(1, layers + 1):
                x = DenseLayer(
                    self.growth_rate, self.bn_size, self.drop_rate, conv, norm, act,
                    name=f"denseblock{b}_layer{i}",
                )(x, train)  # fmt: skip
            features += layers * self.growth_rate
            if b < len(self.block_layers):
                features = int(features * self.compression)
                x = Transition(features, conv, norm, act, name=f"transition{b}")(x)

        # Table 1's classification layer: the last BN-ReLU, global average pool, fc.
        x = act(norm(name="norm5")(x))
        x = jnp.mean(x, axis=(1, 2))
        if features_only:
            return x
        return nn.Dense(
            self.num_classes, dtype=self.dtype, bias_init=nn.initializers.zeros, name="classifier"
        )(x)


_NOTES = (
    "DenseNet-BC as torchvision: bottleneck 4k, compression 0.5, stem 7x7/2 conv + BN + ReLU + "
    "3x3/2 max-pool (pad 1), convs without bias, final BN-ReLU, fc with bias"
)
_densenet = functools.partial(
    register_model, constructor=DenseNet, input_size=(224, 224, 3), num_classes=1000, reference=HUANG_2017,
    notes=_NOTES,
)  # fmt: skip

_densenet(
    "densenet121", dict(block_layers=(6, 12, 24, 16), growth_rate=32, stem_features=64),
    num_params=7_978_856, gmacs=2.834,
    reported={"imagenet/top1_error": 25.02, "imagenet/top1_error_10crop": 23.61},
)  # fmt: skip
_densenet(
    "densenet161", dict(block_layers=(6, 12, 36, 24), growth_rate=48, stem_features=96),
    num_params=28_681_000, gmacs=7.728,
    notes=_NOTES + "; k=48, stem 96 (2k); Table 3 has no DenseNet-161 row, so no reported errors",
)  # fmt: skip
_densenet(
    "densenet169", dict(block_layers=(6, 12, 32, 32), growth_rate=32, stem_features=64),
    num_params=14_149_480, gmacs=3.360,
    reported={"imagenet/top1_error": 23.80, "imagenet/top1_error_10crop": 22.08},
)  # fmt: skip
_densenet(
    "densenet201", dict(block_layers=(6, 12, 48, 32), growth_rate=32, stem_features=64),
    num_params=20_013_928, gmacs=4.291,
    reported={"imagenet/top1_error": 22.58, "imagenet/top1_error_10crop": 21.46},
)  # fmt: skip
_densenet(
    "densenet264", dict(block_layers=(6, 12, 64, 48), growth_rate=32, stem_features=64),
    num_params=33_337_704, gmacs=5.752,
    notes=_NOTES + "; not in torchvision: built from Table 1 with the same conventions",
    reported={"imagenet/top1_error": 22.15, "imagenet/top1_error_10crop": 20.80},
)  # fmt: skip
