"""GoogLeNet (Inception v1): the paper's network and torchvision's BatchNorm variant.

Szegedy, Liu, Jia, Sermanet, Reed, Anguelov, Erhan, Vanhoucke, Rabinovich 2015, "Going deeper with
convolutions", CVPR: Table 1 (layers and filter counts), Fig. 2(b) (inception module), Fig. 3 (LRN
placement), Sec. 5 (auxiliary classifiers).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxcnn.layers import (
    BatchNorm,
    ConvNormAct,
    LocalResponseNorm,
    adaptive_avg_pool,
    check_classifier_pool,
    window_avg_pool,
)
from jaxcnn.registry import register_model

SZEGEDY_2015 = "Szegedy et al. 2015, Going Deeper with Convolutions"

# Table 1, per module: #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
INCEPTION_V1 = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def max_pool_ceil(x, window: int, stride: int, pool: Callable = nn.max_pool):
    """Max-pool rounding the output size up (Caffe; torchvision's ceil_mode=True), no padding.

    A last partial window at the bottom/right is kept: e.g. 112 -> 56 and 15 -> 7 with 3x3/2.
    `pool` has nn.max_pool's signature.
    """
    pads = []
    for n in x.shape[1:3]:
        out = -(-(n - window) // stride) + 1
        pads.append((0, max(0, (out - 1) * stride + window - n)))
    return pool(x, (window, window), (stride, stride), padding=pads)


def classifier_pool(x, input_shape, window: int, mode: str = "dense"):
    """The k x k average pool before the classifier (Table 1's 7x7/1), dense on larger maps.

    The global mean at the training size (the map is k x k) and below; on larger maps, with mode
    "dense", the mean of the k x k windows at stride 1 (layers.window_avg_pool: the classifier's
    score map averaged); with "adaptive" the global mean (torchvision's AdaptiveAvgPool2d((1, 1))).
    A ValueError if the input was too small to leave any map, or for an unknown mode.
    """
    check_classifier_pool(mode)
    if 0 in x.shape[1:3]:
        raise ValueError(
            f"input of spatial size {input_shape[1:3]} is too small: the last feature map is empty"
        )
    return window_avg_pool(x, window) if mode == "dense" else jnp.mean(x, axis=(1, 2))


class InceptionModule(nn.Module):
    """Fig. 2(b): 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | 3x3/1 max-pool -> 1x1, concatenated on channels.

    Attributes:
      filters: the Table 1 row (#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj).
      kernel5: kernel of the "5x5" branch (5 in the paper; torchvision's GoogLeNet uses 3).
      unit: layers.ConvNormAct with conv, norm and act bound by the parent.
      pool: the max-pool of the pool branch (nn.max_pool's signature).
    """

    filters: tuple[int, int, int, int, int, int]
    kernel5: int
    unit: Callable[..., nn.Module]
    pool: Callable = nn.max_pool

    @nn.compact
    def __call__(self, x):
        f1, f3r, f3, f5r, f5, fp = self.filters
        k, unit = self.kernel5, self.unit
        b1 = unit(f1, (1, 1), name="conv_1x1")(x)
        b2 = unit(f3, (3, 3), name="conv_3x3")(unit(f3r, (1, 1), name="conv_3x3_reduce")(x))
        b3 = unit(f5, (k, k), name="conv_5x5")(unit(f5r, (1, 1), name="conv_5x5_reduce")(x))
        pooled = self.pool(x, (3, 3), (1, 1), padding=((1, 1), (1, 1)))
        b4 = unit(fp, (1, 1), name="pool_proj")(pooled)
        return jnp.concatenate([b1, b2, b3, b4], axis=-1)


class AuxClassifier(nn.Module):
    """Sec. 5: 5x5/3 avg-pool (4x4 at 224), 1x1 conv 128, fc 1024 + ReLU, dropout 0.7, linear.

    `adaptive_pool` pools to 4x4 adaptively as torchvision does (windows of 4 instead of 5 at 224).
    The paper's head needs a 4x4 map for its fc; at other input sizes the 5x5/3 pool (skipped on
    maps smaller than 5) is followed by an adaptive pool to 4x4, the identity at 224.
    """

    num_classes: int
    dropout_rate: float
    adaptive_pool: bool
    unit: Callable[..., nn.Module]
    dense: Callable[..., nn.Module]
    act: Callable = nn.relu

    @nn.compact
    def __call__(self, x, train: bool = False):
        if not self.adaptive_pool and min(x.shape[1:3]) >= 5:
            x = nn.avg_pool(x, (5, 5), (3, 3))
        x = adaptive_avg_pool(x, (4, 4))  # flattened below in (h, w, c) order; torchvision: (c, h, w)
        x = self.unit(128, (1, 1), name="conv")(x)
        x = self.act(self.dense(1024, name="fc1")(x.reshape(x.shape[0], math.prod(x.shape[1:]))))
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        return self.dense(self.num_classes, bias_init=nn.initializers.zeros, name="fc2")(x)


class GoogLeNet(nn.Module):
    """GoogLeNet of Table 1, with the switches that make torchvision's variant.

    Attributes:
      aux_logits: build the two auxiliary classifiers (on 4a and 4d, Sec. 5); in training their
        logits are returned as `(logits, (aux1, aux2))`. They are created at init in any mode.
      batch_norm: BatchNorm (eps 1e-3) after every conv, convs without bias (torchvision).
      lrn: local response normalisation after pool1 and after conv2_3x3 (Fig. 3).
      kernel5: kernel of the "5x5" branch (torchvision: 3).
      pool4_window: window of the max-pool after 4e (3 in Table 1; torchvision: 2).
      dropout_rate: before the last linear layer (40%, Table 1).
      aux_dropout_rate: in the auxiliary heads (70%, Sec. 5).
      aux_adaptive_pool: torchvision's adaptive 4x4 pool in the aux heads instead of 5x5/3.
      classifier_pool: on maps larger than 7x7, "dense" slides the 7x7 pool (the classifier's
        scores averaged, the paper's dense evaluation) or "adaptive" takes the global mean
        (torchvision); the same at 224 (classifier_pool above).
      kernel_init, bias_init: initialisers of the conv and hidden fc layers (classifier biases 0).
      conv, norm, act, pool: the convolution, BatchNorm, activation and max-pool (flax's nn.Conv,
        layers.BatchNorm, nn.relu, nn.max_pool).
    """

    num_classes: int = 1000
    dtype: Any = jnp.float32
    aux_logits: bool = True
    batch_norm: bool = False
    lrn: bool = True
    kernel5: int = 5
    pool4_window: int = 3
    dropout_rate: float = 0.4
    aux_dropout_rate: float = 0.7
    aux_adaptive_pool: bool = False
    classifier_pool: str = "dense"
    kernel_init: Callable = nn.initializers.lecun_uniform()
    bias_init: Callable = nn.initializers.constant(0.2)
    conv: Callable[..., nn.Module] = nn.Conv
    norm: Callable[..., nn.Module] = BatchNorm
    act: Callable = nn.relu
    pool: Callable = nn.max_pool

    @nn.compact
    def __call__(self, x, train: bool = False, features_only: bool = False):
        inits = dict(kernel_init=self.kernel_init, bias_init=self.bias_init)
        conv = functools.partial(self.conv, use_bias=not self.batch_norm, dtype=self.dtype, **inits)
        norm = None
        if self.batch_norm:
            norm = functools.partial(self.norm, use_running_average=not train, epsilon=1e-3, dtype=self.dtype)
        unit = functools.partial(ConvNormAct, conv=conv, norm=norm, act=self.act)
        pool_ceil = functools.partial(max_pool_ceil, pool=self.pool)
        dense = functools.partial(nn.Dense, dtype=self.dtype, **inits)
        # Caffe's bvlc_googlenet LRN: n=5, alpha=1e-4 (divided by n), beta=0.75, k=1.
        lrn = functools.partial(LocalResponseNorm, size=5, alpha=1e-4 / 5, beta=0.75, k=1.0)
        inception = functools.partial(InceptionModule, kernel5=self.kernel5, unit=unit, pool=self.pool)
        aux = functools.partial(
            AuxClassifier, num_classes=self.num_classes, dropout_rate=self.aux_dropout_rate,
            adaptive_pool=self.aux_adaptive_pool, unit=unit, dense=dense, act=self.act,
        )  # fmt: skip
        with_aux = self.aux_logits and not features_only and (train or self.is_initializing())
        # Out of training the heads are only run at init, to create their parameters: on an empty
        # batch, so they cost no multiply-adds (the eval-mode MACs are the main path's).

        input_shape, x = x.shape, x.astype(self.dtype)
        x = unit(64, (7, 7), strides=2, padding=3, name="conv1_7x7")(x)
        x = pool_ceil(x, 3, 2)
        x = lrn(name="norm1")(x) if self.lrn else x
        x = unit(64, (1, 1), name="conv2_3x3_reduce")(x)
        x = unit(192, (3, 3), name="conv2_3x3")(x)
        x = lrn(name="norm2")(x) if self.lrn else x
        x = pool_ceil(x, 3, 2)
        x = inception(INCEPTION_V1["3a"], name="inception_3a")(x)
        x = inception(INCEPTION_V1["3b"], name="inception_3b")(x)
        x = pool_ceil(x, 3, 2)
        aux_outputs = []
        for block in ("4a", "4b", "4c", "4d", "4e"):
            x = inception(INCEPTION_V1[block], name=f"inception_{block}")(x)
            if with_aux and block in ("4a", "4d"):
                head = aux(name=f"aux{len(aux_outputs) + 1}")
                aux_outputs.append(head(x if train else x[:0], train))
        x = pool_ceil(x, self.pool4_window, 2)
        x = inception(INCEPTION_V1["5a"], name="inception_5a")(x)
        x = inception(INCEPTION_V1["5b"], name="inception_5b")(x)
        # Table 1's 7x7/1 average pool (the 7x7 map at 224)
        x = classifier_pool(x, input_shape, 7, self.classifier_pool)
        if features_only:
            return x
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = dense(self.num_classes, bias_init=nn.initializers.zeros, name="fc")(x)
        if train and self.aux_logits:
            return x, tuple(aux_outputs)
        return x


_googlenet = functools.partial(
    register_model, constructor=GoogLeNet, input_size=(224, 224, 3), num_classes=1000, reference=SZEGEDY_2015
)

_googlenet(
    "googlenet", num_params=13_378_280, gmacs=1.583, small_input_size=31,
    notes="Table 1 exactly: true 5x5 convs, ReLU, conv biases, no BatchNorm, LRN after pool1 and "
    "conv2_3x3, ceil-mode 3x3/2 max-pools (Caffe), dropout 0.4. num_params includes the two aux heads "
    "(aux_logits=False drops them); Table 1 counts weights without biases (K = 1024). Paper silent "
    "on LRN constants and init: Caffe bvlc_googlenet's (LRN n=5 alpha=1e-4/n beta=0.75 k=1; xavier = "
    "LeCun uniform, biases 0.2, classifier biases 0). Aux heads: 5x5/3 avg-pool then adaptive pool to "
    "4x4 (identity at 224), so other input sizes work; out of training they only run at init, on an "
    "empty batch (no MACs)",
    reported={"imagenet/top5_error": 10.07, "imagenet/top5_error_10crop": 9.15,
              "imagenet/top5_error_144crop": 7.89},
)  # fmt: skip
_googlenet(
    "googlenet_tv",
    dict(batch_norm=True, lrn=False, kernel5=3, pool4_window=2, dropout_rate=0.2, aux_adaptive_pool=True,
         kernel_init=nn.initializers.normal(0.01), bias_init=nn.initializers.zeros),
    num_params=13_004_888, gmacs=1.498, small_input_size=15,
    notes="torchvision's GoogLeNet: BatchNorm (eps 1e-3) after every conv (no conv biases), no LRN, "
    "3x3 conv in the '5x5' branch, 2x2/2 ceil-mode pool after 4e, dropout 0.2, aux heads with adaptive "
    "4x4 pool and dropout 0.7. num_params includes the aux heads (torchvision counts without them). "
    "Init N(0, 0.01) as torchvision's trunc_normal(std=0.01, a=-2, b=2). small_input_size is "
    "torchvision's min_size",
)  # fmt: skip
