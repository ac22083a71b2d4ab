"""VGG: configurations A to E of Simonyan & Zisserman, and torchvision's BatchNorm variants.

Simonyan, Zisserman 2015, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
ICLR: Sec. 2.1 (architecture), Table 1 (configurations), Table 2 (parameters), Sec. 3.1 (training
and initialisation), Table 3 (single-scale errors).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxcnn.layers import (
    BatchNorm,
    DenseAsConv,
    LocalResponseNorm,
    adaptive_avg_pool,
    check_classifier_pool,
    dense_window,
    mean_over_positions,
)
from jaxcnn.registry import register_model

SIMONYAN_2015 = "Simonyan, Zisserman 2015, Very Deep Convolutional Networks for Large-Scale Image Recognition"

# Table 1. An int is a 3x3 convolution (stride 1, pad 1) with that many filters, then ReLU;
# (filters, k) a k x k one (configuration C's 1x1 "conv1-256/512"); "LRN" a local response
# normalisation (A-LRN, Krizhevsky's constants, Sec. 2.1); "M" a 2x2/2 max-pool.
VGG_A = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
VGG_A_LRN = (64, "LRN", "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
VGG_B = (64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
VGG_C = (
    64, 64, "M", 128, 128, "M", 256, 256, (256, 1), "M", 512, 512, (512, 1), "M", 512, 512, (512, 1), "M",
)  # fmt: skip
VGG_D = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")
VGG_E = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)  # fmt: skip


class VGG(nn.Module):
    """Blocks of stride-1 convolutions and 2x2 max-pools, then fc6 and fc7 (ReLU, dropout) and fc8.

    Attributes:
      config: the convolutional part, as the VGG_* tables above. Layers are named like the
        paper's blocks: conv1_1, conv1_2, ..., conv5_3 (block = the pools passed + 1).
      batch_norm: BatchNorm between each convolution and its ReLU (torchvision's vgg*_bn; the
        convolutions keep their biases, as there).
      weight_init: "glorot" (Sec. 3.1: Glorot & Bengio's initialisation trains all configurations from
        scratch; biases 0) or "torchvision" (He normal fan_out convolutions, N(0, 0.01) fc layers,
        biases 0).
      adaptive_pool: average-pool a last map smaller than this (h, w) to it before fc6, as
        torchvision, so small inputs work (the identity at 224); None flattens the map as it is.
        Larger maps are evaluated densely (Sec. 3.2): fc6 slides over them as an h x w convolution
        with its own parameters (layers.DenseAsConv), fc7/fc8 act at every position and the class
        scores (logits, before any softmax) are averaged over positions; `features_only` averages
        the fc7 map.
      classifier_pool: "dense" (the dense evaluation above, the paper's) or "adaptive" (torchvision:
        larger maps are average-pooled to adaptive_pool too, and fc6 sees one map).
      hidden: widths of fc6 and fc7.
      dropout_rate: dropout on the outputs of fc6 and fc7 (Sec. 3.1); 0 disables it.
      conv, norm, act, pool: the convolution, BatchNorm, activation and max-pool (flax's nn.Conv,
        layers.BatchNorm, nn.relu, nn.max_pool).
    """

    config: tuple[Any, ...] = VGG_D
    batch_norm: bool = False
    weight_init: str = "glorot"
    adaptive_pool: tuple[int, int] | None = (7, 7)
    classifier_pool: str = "dense"
    hidden: tuple[int, ...] = (4096, 4096)
    dropout_rate: float = 0.5
    num_classes: int = 1000
    dtype: Any = jnp.float32
    conv: Callable[..., nn.Module] = nn.Conv
    norm: Callable[..., nn.Module] = BatchNorm
    act: Callable = nn.relu
    pool: Callable = nn.max_pool

    def _inits(self):
        if self.weight_init == "glorot":
            glorot = nn.initializers.glorot_uniform()
            return glorot, glorot
        if self.weight_init == "torchvision":
            return nn.initializers.variance_scaling(2.0, "fan_out", "normal"), nn.initializers.normal(0.01)
        raise ValueError(f"weight_init must be 'glorot' or 'torchvision', got {self.weight_init!r}")

    @nn.compact
    def __call__(self, x, train: bool = False, features_only: bool = False):
        conv_init, dense_init = self._inits()
        conv = functools.partial(self.conv, padding="SAME", dtype=self.dtype, kernel_init=conv_init)
        norm = functools.partial(self.norm, use_running_average=not train, dtype=self.dtype)
        dense = functools.partial(nn.Dense, dtype=self.dtype, kernel_init=dense_init)
        act = self.act
        x = x.astype(self.dtype)
        block, index, n_lrn = 1, 0, 0
        for layer in self.config:
            if layer == "M":
                x = self.pool(x, (2, 2), strides=(2, 2))
                block, index = block + 1, 0
            elif layer == "LRN":
                n_lrn += 1
                x = LocalResponseNorm(name=f"lrn{n_lrn}")(x)
            else:
                features, kernel = layer if isinstance(layer, tuple) else (layer, 3)
                index += 1
                x = conv(features, (kernel, kernel), name=f"conv{block}_{index}")(x)
                x = norm(name=f"bn{block}_{index}")(x) if self.batch_norm else x
                x = act(x)
        check_classifier_pool(self.classifier_pool)
        if self.classifier_pool == "adaptive" and self.adaptive_pool is None:
            raise ValueError("classifier_pool='adaptive' needs adaptive_pool (the grid fc6 was built for)")
        window = None
        if self.classifier_pool == "dense":
            window = dense_window(self, "fc6", x, self.adaptive_pool)
        if window is None:
            if self.adaptive_pool is not None:
                x = adaptive_avg_pool(x, self.adaptive_pool)
            x = x.reshape(x.shape[0], -1)
        # Dense evaluation (Sec. 3.2): on a larger map fc6 is a 7x7 conv, fc7/fc8 act at every
        # position (1x1 convs), and the class score map is averaged over positions.
        fc6 = functools.partial(DenseAsConv, kernel_size=window, dtype=self.dtype, kernel_init=dense_init)

        def fc(i, width, x):
            return (fc6 if i == 0 and window else dense)(width, name=f"fc{6 + i}")(x)

        dropout = nn.Dropout(self.dropout_rate, deterministic=not train, name="dropout")
        for i, width in enumerate(self.hidden):
            x = act(fc(i, width, x))
            x = dropout(x) if i < len(self.hidden) - 1 else x
        if features_only:
            return mean_over_positions(x)
        return mean_over_positions(fc(len(self.hidden), self.num_classes, dropout(x)))


# Each variant is a configuration of Table 1 (config=VGG_A is A, ...); reported: Table 3's errors
# (single-scale test, train S=256). The _bn variants are torchvision's, with BatchNorm after every conv.
_vgg = functools.partial(
    register_model, constructor=VGG, input_size=(224, 224, 3), num_classes=1000, reference=SIMONYAN_2015,
    notes="adaptive avg-pool to 7x7 before fc6 (torchvision; the identity at 224) so inputs down to 32x32 "
    "work; dropout 0.5 on fc6/fc7 outputs; init Glorot uniform for A-E (Sec. 3.1), torchvision's (He "
    "normal fan_out convs, N(0, 0.01) fc) for the _bn variants",
)  # fmt: skip
_BN = dict(batch_norm=True, weight_init="torchvision")


def _errors(top1: float, top5: float) -> dict[str, float]:
    return {"imagenet/top1_error": top1, "imagenet/top5_error": top5}


_vgg("vgg11", dict(config=VGG_A), num_params=132_863_336, gmacs=7.609, reported=_errors(29.6, 10.4))
_vgg("vgg11_lrn", dict(config=VGG_A_LRN), num_params=132_863_336, gmacs=7.609, reported=_errors(29.7, 10.5))
_vgg("vgg13", dict(config=VGG_B), num_params=133_047_848, gmacs=11.308, reported=_errors(28.7, 9.9))
_vgg("vgg16_c", dict(config=VGG_C), num_params=133_638_952, gmacs=11.771, reported=_errors(28.1, 9.4))
_vgg("vgg16", dict(config=VGG_D), num_params=138_357_544, gmacs=15.470, reported=_errors(27.0, 8.8))
_vgg("vgg19", dict(config=VGG_E), num_params=143_667_240, gmacs=19.632, reported=_errors(27.3, 9.0))
_vgg("vgg11_bn", dict(config=VGG_A, **_BN), num_params=132_868_840, gmacs=7.609)
_vgg("vgg13_bn", dict(config=VGG_B, **_BN), num_params=133_053_736, gmacs=11.308)
_vgg("vgg16_bn", dict(config=VGG_D, **_BN), num_params=138_365_992, gmacs=15.470)
_vgg("vgg19_bn", dict(config=VGG_E, **_BN), num_params=143_678_248, gmacs=19.632)
