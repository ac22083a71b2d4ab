"""AlexNet (the two-tower 2012 network and torchvision's single-column version) and ZFNet.

Krizhevsky, Sutskever, Hinton 2012, "ImageNet Classification with Deep Convolutional Neural
Networks", NIPS: Sec. 3 and Fig. 2 (architecture), Sec. 4.2 (dropout), Sec. 5 (initialisation).
Krizhevsky 2014, "One weird trick for parallelizing convolutional neural networks", arXiv:1404.5997
(the single-column net torchvision builds). Zeiler, Fergus 2014, "Visualizing and Understanding
Convolutional Networks", ECCV: Sec. 3 and Fig. 3 (architecture), Sec. 5 (the "1 convnet" model).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from jaxcnn.layers import (
    DenseAsConv,
    LocalResponseNorm,
    MaxPool,
    adaptive_avg_pool,
    check_classifier_pool,
    dense_window,
    mean_over_positions,
)
from jaxcnn.registry import register_model

KRIZHEVSKY_2012 = (
    "Krizhevsky, Sutskever, Hinton 2012, ImageNet Classification with Deep Convolutional Neural Networks"
)
KRIZHEVSKY_2014 = "Krizhevsky 2014, One weird trick for parallelizing convolutional neural networks"
ZEILER_2014 = "Zeiler, Fergus 2014, Visualizing and Understanding Convolutional Networks"

# Layer tables. (features, kernel, stride, padding, groups) is a convolution followed by ReLU
# (conv1, conv2, ...); "lrn" a local response normalisation (lrn1, ...); "pool" a 3x3/2 max-pool.
# Sec. 3.5 / Fig. 2: conv2, conv4 and conv5 see only the maps of their own GPU (2 groups), conv3
# sees both; LRN follows the ReLU of conv1 and conv2 (Sec. 3.3); overlapping pools follow both LRNs
# and conv5 (Sec. 3.4). The table is per network, split across GPUs: 96 = 2 x 48 and so on.
ALEXNET_2012 = (
    (96, 11, 4, 0, 1), "lrn", "pool",
    (256, 5, 1, 2, 2), "lrn", "pool",
    (384, 3, 1, 1, 1),
    (384, 3, 1, 1, 2),
    (256, 3, 1, 1, 2), "pool",
)  # fmt: skip
# One weird trick, Sec. 5 (as torchvision builds it): one column, 64-192-384-256-256, no LRN.
ALEXNET_2014 = (
    (64, 11, 4, 2, 1), "pool",
    (192, 5, 1, 2, 1), "pool",
    (384, 3, 1, 1, 1),
    (256, 3, 1, 1, 1),
    (256, 3, 1, 1, 1), "pool",
)  # fmt: skip
# Fig. 3: conv, ReLU, pool, then contrast normalisation across maps. Paddings (the paper does not
# print them) chosen for its map sizes: conv1 pad 1 (224 -> 110), conv2 unpadded (55 -> 26),
# pools in ceil mode (110 -> 55, 26 -> 13, 13 -> 6), conv3-5 pad 1 (13 -> 13).
ZFNET = (
    (96, 7, 2, 1, 1), "pool", "lrn",
    (256, 5, 2, 0, 1), "pool", "lrn",
    (384, 3, 1, 1, 1),
    (384, 3, 1, 1, 1),
    (256, 3, 1, 1, 1), "pool",
)  # fmt: skip


class AlexNet(nn.Module):
    """Convolutions, LRN and overlapping max-pools, then fc6 and fc7 (ReLU, dropout) and fc8.

    On inputs larger than the ones fc6 was built for, the model is evaluated densely (Simonyan &
    Zisserman 2015, Sec. 3.2): fc6 slides over the last map as a convolution (layers.DenseAsConv, same
    parameters), fc7 and fc8 act at every position, and the class score map (logits) is averaged
    over positions; `features_only` averages the fc7 map likewise.

    Attributes:
      layers: the feature extractor, a layer table as ALEXNET_2012 above.
      ceil_pool: pool in ceil mode (the last window may hang over the bottom/right edge, as in Caffe);
        floor mode (unpadded windows only) otherwise.
      adaptive_pool: average-pool the last map to this (h, w) before fc6, as torchvision does, so
        inputs smaller than the paper's also work; None feeds the map to fc6 as it is. Maps larger
        than (h, w) are evaluated densely instead, unless classifier_pool is "adaptive".
      classifier_pool: "dense" (the papers' dense evaluation above) or "adaptive" (torchvision: maps
        larger than adaptive_pool are pooled down to it too, fc6 sees one map); layers.CLASSIFIER_POOLS.
      hidden: widths of fc6 and fc7.
      dropout_rate: dropout probability; 0 disables it.
      dropout_on: "outputs" drops the outputs of fc6 and fc7 (Sec. 4.2: "the first two
        fully-connected layers"); "inputs" drops the inputs of fc6 and fc7 (torchvision).
      weight_std: initial weights are N(0, weight_std^2) (Sec. 5: 0.01).
      one_bias: layers whose biases start at 1 (Sec. 5: conv2, conv4, conv5 and the hidden fc
        layers, to give the ReLUs positive inputs early on); all other biases start at 0.
      towers: the columns of the network (Sec. 3.5: 2, one per GPU). Every layer's output maps are
        the towers' contiguous slices; a conv whose `groups` equals `towers` sees only its own
        tower's maps, the other layers (conv3, the fc layers) see both; LRN normalises within a tower.
      tower_axis: the mesh axis to place the towers on (None: one device). Then each tower's maps,
        filters and half of every fc layer live on their own device of that axis (size `towers`),
        and activations cross devices only where the towers communicate: into conv3 and into fc6,
        fc7 and fc8 (sharding constraints on the maps; the grouped convs run per device in a
        shard_map, as XLA would otherwise gather them). Needs a mesh with that axis in context
        (`with jax.set_mesh(mesh):` around the jitted call); shard the kernels' last dim over it
        (sharding.param_sharding) to keep each tower's parameters on its device only.
      conv, act, pool: the convolution, activation and max-pool (flax's nn.Conv, nn.relu, nn.max_pool).
      activation: "relu" (`act`) or "tanh", the saturating unit ReLU replaces (Sec. 3.1 ablation).
      lrn: False leaves out the table's LRN layers (Sec. 3.3 ablation).
      pool_window: the max-pools' window at stride 2: 3 overlaps (Sec. 3.4), 2 does not and gives
        the same map sizes (the paper's comparison).
    """

    layers: tuple[Any, ...] = ALEXNET_2012
    ceil_pool: bool = False
    adaptive_pool: tuple[int, int] | None = None
    classifier_pool: str = "dense"
    hidden: tuple[int, ...] = (4096, 4096)
    dropout_rate: float = 0.5
    dropout_on: str = "outputs"
    weight_std: float = 0.01
    one_bias: tuple[str, ...] = ("conv2", "conv4", "conv5", "fc6", "fc7")
    towers: int = 1
    tower_axis: str | None = None
    num_classes: int = 1000
    dtype: Any = jnp.float32
    conv: Callable[..., nn.Module] = nn.Conv
    act: Callable = nn.relu
    pool: Callable = nn.max_pool
    activation: str = "relu"
    lrn: bool = True
    pool_window: int = 3

    def _init(self, name):
        bias = nn.initializers.ones if name in self.one_bias else nn.initializers.zeros
        return dict(kernel_init=nn.initializers.normal(self.weight_std), bias_init=bias, name=name)

    def _pool(self, x, name):
        # Overlapping pooling, 3x3 windows at stride 2 (Sec. 3.4).
        k = self.pool_window
        pads = ((0, 0), (0, 0))
        if self.ceil_pool:
            pads = tuple((0, -(-(n - k) // 2) * 2 + k - n) for n in x.shape[1:3])
        return MaxPool(k, 2, pads, pool=self.pool, name=name)(x)

    def _placement(self):
        """place(x, split): x's maps split over the towers' devices, or whole on each (an exchange)."""
        if self.tower_axis is None:
            return lambda x, split: x
        if self.towers < 2:
            raise ValueError(f"tower_axis={self.tower_axis!r} needs towers >= 2, got towers={self.towers}")
        mesh = jax.sharding.get_abstract_mesh()
        if mesh.shape.get(self.tower_axis) != self.towers:
            raise ValueError(
                f"tower_axis={self.tower_axis!r} needs a mesh in context (`with jax.set_mesh(mesh):`) "
                f"whose {self.tower_axis!r} axis has {self.towers} devices; got mesh axes {dict(mesh.shape)}"
            )

        def place(x, split):
            # The batch keeps whatever data-parallel sharding it has; only the maps are placed.
            spec = P(P.UNCONSTRAINED, *(None,) * (x.ndim - 2), self.tower_axis if split else None)
            return jax.lax.with_sharding_constraint(x, spec)

        return place

    @nn.compact
    def __call__(self, x, train: bool = False, features_only: bool = False):
        if self.dropout_on not in ("outputs", "inputs"):
            raise ValueError(f"dropout_on must be 'outputs' or 'inputs', got {self.dropout_on!r}")
        if self.activation not in ("relu", "tanh"):
            raise ValueError(f"activation must be 'relu' or 'tanh', got {self.activation!r}")
        act = self.act if self.activation == "relu" else jnp.tanh
        conv = functools.partial(self.conv, dtype=self.dtype)
        dropout = nn.Dropout(self.dropout_rate, deterministic=not train, name="dropout")
        place = self._placement()
        x = x.astype(self.dtype)
        n_conv = n_lrn = 0
        for layer in self.layers:
            if layer == "pool":
                x = self._pool(x, f"pool{n_conv}")  # pool1, pool2, pool5 as in the paper
            elif layer == "lrn":
                if not self.lrn:
                    continue
                n_lrn += 1
                x = LocalResponseNorm(groups=self.towers, name=f"lrn{n_lrn}")(x)
            else:
                features, kernel, stride, pad, groups = layer
                n_conv += 1
                local = groups == self.towers > 1  # conv2/4/5: each tower's own maps only
                x = place(x, split=local)  # conv3: both towers' maps
                on_towers = {}
                if local and self.tower_axis:
                    on_towers["conv_general_dilated"] = _tower_conv(self.tower_axis, self.towers)
                x = conv(
                    features, (kernel, kernel), (stride, stride), [(pad, pad)] * 2,
                    feature_group_count=groups, **self._init(f"conv{n_conv}"), **on_towers,
                )(x)  # fmt: skip
                x = place(act(x), split=True)

        x = place(x, split=False)  # fc6 sees both towers' maps
        check_classifier_pool(self.classifier_pool)
        if self.classifier_pool == "adaptive" and self.adaptive_pool is None:
            raise ValueError("classifier_pool='adaptive' needs adaptive_pool (the grid fc6 was built for)")
        window = None
        if self.classifier_pool == "dense":
            window = dense_window(self, f"fc{n_conv + 1}", x, self.adaptive_pool)
        if window is None:
            if self.adaptive_pool is not None:
                x = adaptive_avg_pool(x, self.adaptive_pool)
            x = x.reshape(x.shape[0], -1)

        def fc(i, width, x):
            # Every fc layer sees both towers' units and computes half of its own on each tower.
            init = dict(dtype=self.dtype, **self._init(f"fc{n_conv + 1 + i}"))
            layer = DenseAsConv(width, window, **init) if i == 0 and window else nn.Dense(width, **init)
            return place(layer(place(x, split=False)), split=True)

        for i, width in enumerate(self.hidden):
            x = dropout(x) if self.dropout_on == "inputs" else x
            x = act(fc(i, width, x))
            x = dropout(x) if self.dropout_on == "outputs" and i < len(self.hidden) - 1 else x
        if features_only:
            return mean_over_positions(x)
        x = dropout(x) if self.dropout_on == "outputs" else x  # the output of the last hidden layer
        return mean_over_positions(fc(len(self.hidden), self.num_classes, x))


def _tower_conv(axis: str, towers: int):
    """lax.conv_general_dilated for a conv grouped by tower, run on each tower's own device.

    XLA's partitioner gathers the maps and filters of a grouped convolution split over devices;
    inside this shard_map each device convolves its own tower's maps with its own tower's filters
    (the kernel's output features split like the maps), so nothing crosses devices. No collective
    is written here: the maps arrive split by the model's sharding constraints.
    """
    spec = P(None, None, None, axis)

    def conv(lhs, rhs, window_strides, padding, *, feature_group_count, **kwargs):
        def local(lhs, rhs):
            groups = feature_group_count // towers
            return jax.lax.conv_general_dilated(
                lhs, rhs, window_strides, padding, feature_group_count=groups, **kwargs
            )

        return jax.shard_map(local, in_specs=(spec, spec), out_specs=spec, axis_names={axis})(lhs, rhs)

    return conv


_alexnet = functools.partial(register_model, constructor=AlexNet, input_size=(224, 224, 3), num_classes=1000)

_alexnet(
    "alexnet", dict(layers=ALEXNET_2014, adaptive_pool=(6, 6), dropout_on="inputs"),
    reference=KRIZHEVSKY_2014, num_params=61_100_840, gmacs=0.714, small_input_size=63,
    notes="torchvision's single-column AlexNet: conv 64@11x11/4 pad 2, 192@5x5, 384, 256, 256@3x3, "
    "no LRN, max-pool 3x3/2, adaptive avg-pool to 6x6, dropout 0.5 on the inputs of fc6/fc7. "
    "Initialised as the 2012 paper (N(0, 0.01), biases 1 in conv2/4/5, fc6/7); the 2014 note gives "
    "no init. No error reported for this exact net",
)  # fmt: skip
_alexnet(
    "alexnet_2012", dict(layers=ALEXNET_2012, towers=2),
    input_size=(227, 227, 3), reference=KRIZHEVSKY_2012, num_params=60_965_224, gmacs=0.724,
    small_input_size=67,
    notes="the two-GPU network as one graph: conv2/4/5 grouped (feature_group_count=2), conv3 and "
    "the fc layers across both towers; tower_axis='model' places the towers on two devices (same "
    "outputs). LRN k=2 n=5 alpha=1e-4 beta=0.75 after ReLU of conv1/2, within each tower's maps; "
    "max-pool 3x3/2 after lrn1, lrn2, conv5. 227x227 input (the paper's 224 does not give 55x55). "
    "Dropout on the outputs of fc6 and fc7 (Sec. 4.2). Errors: ILSVRC-2012 val, 1 CNN, 10 patches. "
    "Below 227 fc6 sees a smaller map (no adaptive pool, as the paper), so its shape changes.",
    reported={"imagenet/top1_error_10crop": 40.7, "imagenet/top5_error_10crop": 18.2},
)  # fmt: skip
_alexnet(
    "zfnet", dict(layers=ZFNET, ceil_pool=True, one_bias=()),
    reference=ZEILER_2014, num_params=62_357_608, gmacs=1.168, small_input_size=63,
    notes="Table 2 '1 convnet' (Fig. 3): conv1 96@7x7/2 pad 1 (110x110), pool 3x3/2 ceil (55), LRN, "
    "conv2 256@5x5/2 pad 0 (26), pool ceil (13), LRN, conv3/4/5 384/384/256@3x3 pad 1, pool (6x6x256), "
    "fc 4096-4096-1000, dropout 0.5 on fc6/fc7 outputs; ungrouped. Paddings and LRN constants "
    "(AlexNet's) are not in the paper. Init N(0, 0.01), biases 0 (Sec. 3); the RMS-0.1 filter "
    "renormalisation of Sec. 3 is a training-time rule, not built in. Errors averaged over 10 crops.",
    reported={"imagenet/top1_error_10crop": 38.4, "imagenet/top5_error_10crop": 16.5},
)  # fmt: skip


# AlexNet Fig. 1: "a four-layer convolutional neural network" on CIFAR-10, ReLU against tanh. The
# paper does not print the net; cuda-convnet's example of its size (layers-80sec) reads as three
# 5x5 convolutions (32, 32, 64 maps, padding 2), each followed by a 3x3/2 pool (max, average,
# average), and one fully connected layer: four layers with weights.
FIG1_CONVS = (32, 32, 64)
FIG1_POOLS = ("max", "avg", "avg")
_FIG1_ACTS = {"relu": nn.relu, "tanh": jnp.tanh}


class AlexNetFig1(nn.Module):
    """The small convnet of AlexNet's Fig. 1, with its activation as a switch.

    Attributes:
      num_classes: outputs of the fully connected layer (fc4).
      act: "relu" or "tanh", after every convolution (the figure's two curves); a string, so a
        config can set it (`config.model.act = "tanh"`).
      dtype: computation dtype.
      conv: the convolution (flax's nn.Conv).
    """

    num_classes: int = 10
    act: str = "relu"
    dtype: Any = jnp.float32
    conv: Callable = nn.Conv

    @nn.compact
    def __call__(self, x, train: bool = False, features_only: bool = False):
        if self.act not in _FIG1_ACTS:
            raise ValueError(f"act must be one of {sorted(_FIG1_ACTS)}, got {self.act!r}")
        act = _FIG1_ACTS[self.act]
        x = x.astype(self.dtype)
        for i, (features, pool) in enumerate(zip(FIG1_CONVS, FIG1_POOLS), 1):
            x = act(self.conv(features, (5, 5), padding=[(2, 2)] * 2, dtype=self.dtype, name=f"conv{i}")(x))
            # 3x3/2 windows padded on the bottom/right as cuda-convnet's pools (32 -> 16 -> 8 -> 4).
            window = dict(window_shape=(3, 3), strides=(2, 2), padding=[(0, 1), (0, 1)])
            x = (
                nn.max_pool(x, **window)
                if pool == "max"
                else nn.avg_pool(x, count_include_pad=False, **window)
            )
        x = x.reshape(x.shape[0], -1)
        if features_only:
            return x
        return nn.Dense(self.num_classes, dtype=self.dtype, name="fc4")(x)


register_model(
    "alexnet_fig1", dict(act="relu"), constructor=AlexNetFig1, input_size=(32, 32, 3), num_classes=10,
    reference=KRIZHEVSKY_2012, num_params=89_578, gmacs=0.0122982, small_input_size=16,
    notes="Fig. 1's four-layer CIFAR-10 convnet (read from cuda-convnet's layers-80sec: conv 32-32-64 "
    "@5x5 pad 2, each followed by a 3x3/2 pool (max, avg, avg), then fc 10); no LRN, no dropout, no "
    "weight decay ('no regularization of any kind'). config.model.act = 'tanh' is the dashed curve. "
    "flax's default (LeCun normal) initialisation for both activations. No error reported (the figure "
    "shows training error only)",
)  # fmt: skip
