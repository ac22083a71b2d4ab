"""ResNets: v1 / v1.5, pre-activation, CIFAR (and plain twins), wide, ResNeXt and squeeze-excite.

He, Zhang, Ren, Sun 2016, "Deep Residual Learning for Image Recognition" (Sec. 3.3, 4.2, Table 1);
He et al. 2016b, "Identity Mappings in Deep Residual Networks"; Zagoruyko & Komodakis 2016,
"Wide Residual Networks"; Xie et al. 2017, "Aggregated Residual Transformations for Deep Neural
Networks"; Hu, Shen, Sun 2018, "Squeeze-and-Excitation Networks"; Huang et al. 2016, "Deep Networks
with Stochastic Depth".
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxcnn.layers import BatchNorm, DropPath, SqueezeExcite
from jaxcnn.registry import register_model

ModuleDef = Any

# He et al. 2015 ("Delving deep", Sec. 2.2) normal init, std sqrt(2 / fan_out), as torchvision's ResNets.
he_normal_fan_out = nn.initializers.variance_scaling(2.0, "fan_out", "normal")
# torchvision's nn.Linear default for the classifier: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
linear_init = nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform")

SHORTCUTS = ("projection", "zero_pad", "projection_all", "none")


class ResidualBlock(nn.Module):
    """One residual unit: a branch of convolutions plus a shortcut.

    Attributes:
      layers: the branch's convolutions in order, each (kernel size, features, stride, groups).
      out_features: channels of the unit's output.
      conv, norm, act: the layer constructors and activation, from the parent.
      shortcut: "projection" (1x1 conv, plus BN unless pre-activated, where the shape changes;
        option B of Sec. 3.3), "zero_pad" (stride-s subsampling and zero channels appended; option A,
        no parameters), "projection_all" (a projection in every unit; option C) or "none" (the plain
        nets of Sec. 4.1/4.2).
      preact: BN-ReLU before each conv and nothing after the addition (He et al. 2016b, Fig. 4e),
        instead of BN after each conv and ReLU after the addition.
      preactivated: (preact) the input already went through BN-ReLU in the stem: the first unit.
      se_reduction: squeeze-excite the branch before the addition (Hu et al. 2018, Fig. 3); 0 = off.
      drop_path_rate: probability of dropping the branch per example (stochastic depth).
      dropout_rate: dropout before the branch's last conv (Zagoruyko & Komodakis 2016).
      zero_init_last: start the branch at zero: the last BN's gamma (the last conv if preact) is 0.
    """

    layers: tuple[tuple[int, int, int, int], ...]
    out_features: int
    conv: ModuleDef
    norm: ModuleDef
    act: Callable = nn.relu
    shortcut: str = "projection"
    preact: bool = False
    preactivated: bool = False
    se_reduction: int = 0
    drop_path_rate: float = 0.0
    dropout_rate: float = 0.0
    zero_init_last: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x, train: bool = False):
        stride = max(s for _, _, s, _ in self.layers)
        reshape = stride != 1 or x.shape[-1] != self.out_features
        y = x
        if self.preact and not self.preactivated:
            y = self.act(self.norm(name="bn1")(x))
            if reshape:  # a reshaping shortcut reads the pre-activated input (2016b's code)
                x = y
        zeros = nn.initializers.zeros
        for i, (k, features, s, groups) in enumerate(self.layers):
            last = i == len(self.layers) - 1
            if self.preact and i > 0:
                y = self.act(self.norm(name=f"bn{i + 1}")(y))
            if last:
                y = nn.Dropout(self.dropout_rate, deterministic=not train)(y)
            y = self.conv(
                features, (k, k), (s, s), padding=[(k // 2, k // 2)] * 2, feature_group_count=groups,
                kernel_init=zeros if self.preact and last and self.zero_init_last else he_normal_fan_out,
                name=f"conv{i + 1}",
            )(y)  # fmt: skip
            if not self.preact:
                scale_init = zeros if last and self.zero_init_last else nn.initializers.ones
                y = self.norm(scale_init=scale_init, name=f"bn{i + 1}")(y)
                if not last:
                    y = self.act(y)
        if self.se_reduction:
            # The SE gates are 1x1 convs with biases and flax's default (LeCun normal) init.
            se_conv = functools.partial(self.conv, use_bias=True, kernel_init=nn.initializers.lecun_normal())
            y = SqueezeExcite(self.se_reduction, self.dtype, se_conv, self.act, name="se")(y)
        y = DropPath(self.drop_path_rate, name="drop_path")(y, train)

        if self.shortcut != "none":
            if self.shortcut == "projection_all" or (reshape and self.shortcut == "projection"):
                x = self.conv(
                    self.out_features, (1, 1), (stride, stride), padding="VALID", name="downsample_conv"
                )(x)
                if not self.preact:
                    x = self.norm(name="downsample_bn")(x)
            elif reshape:  # option A: identity on the first channels, zeros on the new ones (Sec. 3.3)
                x = x[:, ::stride, ::stride, :]
                x = jnp.pad(x, [(0, 0)] * 3 + [(0, self.out_features - x.shape[-1])])
            y = y + x
        return y if self.preact else self.act(y)


class ResNet(nn.Module):
    """A ResNet of any depth, width, cardinality and unit type (He et al. 2016, Table 1).

    Attributes:
      stage_sizes: residual units per stage; stages after the first start with stride 2.
      block: "basic" (two 3x3 convs) or "bottleneck" (1x1-3x3-1x1, four-fold expansion).
      widths: each stage's base width; a stage outputs width (basic) or 4 x width (bottleneck).
      groups: cardinality of the bottleneck's 3x3 conv (ResNeXt, Xie et al. 2017, Fig. 3c).
      base_width: width per group at base width 64: the 3x3 has int(width * base_width / 64) * groups
        channels (64 = ResNet, 4 with 32 groups = ResNeXt 32x4d, 128 = wide ResNet-50-2).
      stride_on_3x3: where a bottleneck strides: the 3x3 (v1.5, fb.resnet.torch and torchvision) or
        the first 1x1 (False; He et al. 2016's released models).
      preact: pre-activation units (He et al. 2016b) with a final BN-ReLU before pooling.
      shortcut: "projection", "zero_pad", "projection_all" or "none" (see ResidualBlock).
      stem: "imagenet" (7x7/2 conv, BN-ReLU, 3x3/2 max-pool) or "cifar" (3x3 conv, BN-ReLU; Sec. 4.2).
        With preact, the stem's BN-ReLU is the first unit's pre-activation (2016b, Appendix).
      stem_width: filters of the stem conv.
      se_reduction: squeeze-excite reduction ratio in every unit; 0 = none.
      drop_path_rate: stochastic depth: unit l of L is dropped with rate * l / L (Huang et al. 2016,
        Sec. 3, linear decay rule).
      dropout_rate: dropout between the convs of each unit (wide ResNets; 0.3 in their paper).
      zero_init_last_bn: zero-init the last BN gamma of each branch (last conv if preact).
      conv, norm, act, pool: the convolution, BatchNorm, activation and max-pool (flax's nn.Conv,
        layers.BatchNorm, nn.relu, nn.max_pool).
    """

    stage_sizes: tuple[int, ...] = (2, 2, 2, 2)
    block: str = "basic"
    widths: tuple[int, ...] = (64, 128, 256, 512)
    groups: int = 1
    base_width: int = 64
    stride_on_3x3: bool = True
    preact: bool = False
    shortcut: str = "projection"
    stem: str = "imagenet"
    stem_width: int = 64
    se_reduction: int = 0
    drop_path_rate: float = 0.0
    dropout_rate: float = 0.0
    zero_init_last_bn: bool = False
    num_classes: int = 1000
    dtype: Any = jnp.float32
    conv: ModuleDef = nn.Conv
    norm: ModuleDef = BatchNorm
    act: Callable = nn.relu
    pool: Callable = nn.max_pool

    def _branch(self, width: int, stride: int) -> tuple[tuple[int, int, int, int], ...]:
        if self.block == "basic":
            return ((3, width, stride, 1), (3, width, 1, 1))
        mid = int(width * self.base_width / 64) * self.groups
        s1, s3 = (1, stride) if self.stride_on_3x3 else (stride, 1)
        return ((1, mid, s1, 1), (3, mid, s3, self.groups), (1, 4 * width, 1, 1))

    def _validate(self):
        if self.block not in ("basic", "bottleneck"):
            raise ValueError(f"block must be 'basic' or 'bottleneck', got {self.block!r}")
        if self.block == "basic" and (self.groups, self.base_width) != (1, 64):
            raise ValueError(
                f"basic blocks take groups=1, base_width=64; got {self.groups}, {self.base_width}"
            )
        if self.shortcut not in SHORTCUTS:
            raise ValueError(f"shortcut must be one of {SHORTCUTS}, got {self.shortcut!r}")
        if self.stem not in ("imagenet", "cifar"):
            raise ValueError(f"stem must be 'imagenet' or 'cifar', got {self.stem!r}")
        if len(self.stage_sizes) != len(self.widths):
            raise ValueError(f"stage_sizes {self.stage_sizes} and widths {self.widths} differ in length")

    @nn.compact
    def __call__(self, x, train: bool = False, features_only: bool = False):
        self._validate()
        conv = functools.partial(self.conv, use_bias=False, dtype=self.dtype, kernel_init=he_normal_fan_out)
        norm = functools.partial(self.norm, use_running_average=not train, dtype=self.dtype)
        act = self.act
        x = x.astype(self.dtype)

        if self.stem == "imagenet":
            x = conv(self.stem_width, (7, 7), (2, 2), padding=[(3, 3)] * 2, name="conv1")(x)
        else:
            x = conv(self.stem_width, (3, 3), padding=[(1, 1)] * 2, name="conv1")(x)
        x = act(norm(name="bn1")(x))
        if self.stem == "imagenet":
            x = self.pool(x, (3, 3), strides=(2, 2), padding=[(1, 1)] * 2)

        total, index = sum(self.stage_sizes), 0
        expansion = 1 if self.block == "basic" else 4
        for i, (depth, width) in enumerate(zip(self.stage_sizes, self.widths)):
            for j in range(depth):
                index += 1
                x = ResidualBlock(
                    self._branch(width, 2 if i > 0 and j == 0 else 1), expansion * width,
                    conv=conv, norm=norm, act=act, shortcut=self.shortcut, preact=self.preact,
                    preactivated=self.preact and index == 1, se_reduction=self.se_reduction,
                    drop_path_rate=self.drop_path_rate * index / total, dropout_rate=self.dropout_rate,
                    zero_init_last=self.zero_init_last_bn, dtype=self.dtype, name=f"layer{i + 1}_{j}",
                )(x, train)  # fmt: skip

        if self.preact:  # the extra activation after the last addition (2016b, Appendix)
            x = act(norm(name="final_bn")(x))
        x = jnp.mean(x, axis=(1, 2))
        if features_only:
            return x
        return nn.Dense(self.num_classes, dtype=self.dtype, kernel_init=linear_init, name="fc")(x)


HE_2016 = "He, Zhang, Ren, Sun 2016, Deep Residual Learning for Image Recognition"
HE_2016B = "He, Zhang, Ren, Sun 2016, Identity Mappings in Deep Residual Networks"
XIE_2017 = "Xie, Girshick, Dollar, Tu, He 2017, Aggregated Residual Transformations for Deep Neural Networks"
WRN_2016 = "Zagoruyko, Komodakis 2016, Wide Residual Networks"
HU_2018 = "Hu, Shen, Sun 2018, Squeeze-and-Excitation Networks"

BOTTLENECK = dict(block="bottleneck")
V1 = dict(block="bottleneck", stride_on_3x3=False)
PREACT = dict(preact=True)
PREACT_BOTTLENECK = dict(block="bottleneck", preact=True)
# Sec. 4.2: 3x3 conv stem of 16, three stages of n units on 32/16/8 maps with 16/32/64 filters,
# option A (parameter-free) shortcuts.
CIFAR = dict(stem="cifar", stem_width=16, widths=(16, 32, 64), shortcut="zero_pad")
PLAIN = dict(CIFAR, shortcut="none")

V15 = "v1.5 as torchvision: stride on the 3x3, 1x1 conv + BN projection where the shape changes (option B)"
SE = (
    "SE (reduction 16, two FCs with biases) on every branch before the addition (Fig. 3), the same "
    "count as timm/Cadene"
)

_imagenet = functools.partial(register_model, constructor=ResNet, input_size=(224, 224, 3), num_classes=1000)
_cifar = functools.partial(register_model, constructor=ResNet, input_size=(32, 32, 3), num_classes=10)


def _errors(top1: float, top5: float, top1_multiscale: float, top5_multiscale: float) -> dict[str, float]:
    """He et al. 2016, Tables 3 (10-crop) and 4 (multi-scale fully convolutional) errors."""
    return {
        "imagenet/top1_error_10crop": top1,
        "imagenet/top5_error_10crop": top5,
        "imagenet/top1_error_multiscale": top1_multiscale,
        "imagenet/top5_error_multiscale": top5_multiscale,
    }


# fmt: off
# ImageNet ResNets v1.5 (torchvision). resnet50/101's errors: the v1.5 (fb.resnet.torch) baseline of
# Xie et al. 2017, Table 3; He et al.'s own are on the _v1 rows.
_v15 = functools.partial(_imagenet, reference=HE_2016, notes=V15)
_v15("resnet18", dict(stage_sizes=(2, 2, 2, 2)), num_params=11_689_512, gmacs=1.814)
_v15("resnet34", dict(stage_sizes=(3, 4, 6, 3)), num_params=21_797_672, gmacs=3.664,
     reported=_errors(24.52, 7.46, 21.84, 5.71))
_v15("resnet50", dict(BOTTLENECK, stage_sizes=(3, 4, 6, 3)), num_params=25_557_032, gmacs=4.089,
     reported={"imagenet/top1_error": 23.9})
_v15("resnet101", dict(BOTTLENECK, stage_sizes=(3, 4, 23, 3)), num_params=44_549_160, gmacs=7.801,
     reported={"imagenet/top1_error": 22.0})
_v15("resnet152", dict(BOTTLENECK, stage_sizes=(3, 8, 36, 3)), num_params=60_192_808, gmacs=11.514)
_v15("resnet200", dict(BOTTLENECK, stage_sizes=(3, 24, 36, 3)), num_params=64_673_832, gmacs=15.007,
     reference=HE_2016B, notes=V15 + "; the depths of 2016b's ResNet-200 with post-activation units")

# He et al. 2016's original bottleneck placement (Table 1; Tables 3 and 4).
_v1 = functools.partial(
    _imagenet, reference=HE_2016,
    notes="He et al.'s released models: stride on the first 1x1 of a stage's first bottleneck; option B",
)
_v1("resnet50_v1", dict(V1, stage_sizes=(3, 4, 6, 3)), num_params=25_557_032, gmacs=3.858,
    reported=_errors(22.85, 6.71, 20.74, 5.25))
_v1("resnet101_v1", dict(V1, stage_sizes=(3, 4, 23, 3)), num_params=44_549_160, gmacs=7.570,
    reported=_errors(21.75, 6.05, 19.87, 4.60))
_v1("resnet152_v1", dict(V1, stage_sizes=(3, 8, 36, 3)), num_params=60_192_808, gmacs=11.282,
    reported=_errors(21.43, 5.71, 19.38, 4.49))

# Pre-activation ResNets (He et al. 2016b): the convs and their MACs are those of v1.5.
_preact = functools.partial(
    _imagenet, reference=HE_2016B,
    notes="fb.resnet.torch layout: stem conv-BN-ReLU is the first unit's pre-activation (2016b, Appendix), "
    "stride on the 3x3, projection shortcuts are a bare 1x1 conv on the pre-activated input, final BN-ReLU",
)
_preact("preact_resnet18", dict(PREACT, stage_sizes=(2, 2, 2, 2)), num_params=11_687_720, gmacs=1.814)
_preact("preact_resnet34", dict(PREACT, stage_sizes=(3, 4, 6, 3)), num_params=21_795_880, gmacs=3.664)
_preact("preact_resnet50", dict(PREACT_BOTTLENECK, stage_sizes=(3, 4, 6, 3)),
        num_params=25_549_352, gmacs=4.089)
_preact("preact_resnet101", dict(PREACT_BOTTLENECK, stage_sizes=(3, 4, 23, 3)),
        num_params=44_541_480, gmacs=7.801)
_preact("preact_resnet152", dict(PREACT_BOTTLENECK, stage_sizes=(3, 8, 36, 3)),
        num_params=60_185_128, gmacs=11.514)
_preact("preact_resnet200", dict(PREACT_BOTTLENECK, stage_sizes=(3, 24, 36, 3)),
        num_params=64_666_152, gmacs=15.007)

# CIFAR-10 ResNets and their plain twins (He et al. 2016, Sec. 4.2, Table 6, Fig. 6): 6n + 2 layers.
_cifar_resnet = functools.partial(
    _cifar, reference=HE_2016, notes="option A shortcuts (stride-2 subsampling + zero channels, no params)"
)
_cifar_resnet("resnet20", dict(CIFAR, stage_sizes=(3, 3, 3)), num_params=269_722, gmacs=0.04055,
              reported={"cifar10/test_error": 8.75})
_cifar_resnet("resnet32", dict(CIFAR, stage_sizes=(5, 5, 5)), num_params=464_154, gmacs=0.06886,
              reported={"cifar10/test_error": 7.51})
_cifar_resnet("resnet44", dict(CIFAR, stage_sizes=(7, 7, 7)), num_params=658_586, gmacs=0.09717,
              reported={"cifar10/test_error": 7.17})
_cifar_resnet("resnet56", dict(CIFAR, stage_sizes=(9, 9, 9)), num_params=853_018, gmacs=0.1255,
              reported={"cifar10/test_error": 6.97})
_cifar_resnet("resnet110", dict(CIFAR, stage_sizes=(18, 18, 18)), num_params=1_727_962, gmacs=0.2529,
              reported={"cifar10/test_error": 6.43})
_plain = functools.partial(
    _cifar, reference=HE_2016, notes="the resnet of the same depth without shortcuts (Fig. 6): same layers"
)
_plain("plain20", dict(PLAIN, stage_sizes=(3, 3, 3)), num_params=269_722, gmacs=0.04055)
_plain("plain32", dict(PLAIN, stage_sizes=(5, 5, 5)), num_params=464_154, gmacs=0.06886)
_plain("plain44", dict(PLAIN, stage_sizes=(7, 7, 7)), num_params=658_586, gmacs=0.09717)
_plain("plain56", dict(PLAIN, stage_sizes=(9, 9, 9)), num_params=853_018, gmacs=0.1255)
_plain("plain110", dict(PLAIN, stage_sizes=(18, 18, 18)), num_params=1_727_962, gmacs=0.2529)

# Wide ResNets (Zagoruyko & Komodakis 2016).
_wide = functools.partial(_imagenet, reference=WRN_2016)
_wide("wide_resnet50_2", dict(BOTTLENECK, stage_sizes=(3, 4, 6, 3), base_width=128),
      num_params=68_883_240, gmacs=11.398,
      reported={"imagenet/top1_error": 21.9, "imagenet/top5_error": 6.03},
      notes="WRN-50-2-bottleneck as torchvision: inner 1x1/3x3 widths doubled, outer 1x1 as resnet50")
_wide("wide_resnet101_2", dict(BOTTLENECK, stage_sizes=(3, 4, 23, 3), base_width=128),
      num_params=126_886_696, gmacs=22.753, notes="as torchvision: resnet101 with doubled inner widths")
_cifar("wrn28_10",
       dict(CIFAR, stage_sizes=(4, 4, 4), widths=(160, 320, 640), preact=True, shortcut="projection"),
       reference=WRN_2016, num_params=36_479_194, gmacs=5.243,
       notes="WRN-28-10 (Table 1): 3x3 conv 16, 3 groups of 4 pre-activation basic units 160/320/640, "
       "1x1 projection in each group's first unit, final BN-ReLU; count as the torch implementations "
       "(no conv biases). dropout_rate=0.3 is the paper's dropout variant (default 0)",
       reported={"cifar10/test_error": 4.17, "cifar100/test_error": 20.5})

# ResNeXt (Xie et al. 2017, Table 1 template, Fig. 3c: grouped 3x3, stride on the 3x3).
_resnext = functools.partial(_imagenet, reference=XIE_2017, notes="as torchvision")
_resnext("resnext50_32x4d", dict(BOTTLENECK, stage_sizes=(3, 4, 6, 3), groups=32, base_width=4),
         num_params=25_028_904, gmacs=4.231, reported={"imagenet/top1_error": 22.2})
_resnext("resnext101_32x4d", dict(BOTTLENECK, stage_sizes=(3, 4, 23, 3), groups=32, base_width=4),
         num_params=44_177_704, gmacs=7.970, reported={"imagenet/top1_error": 21.2},
         notes="not in torchvision; the count equals timm's resnext101_32x4d")
_resnext("resnext101_32x8d", dict(BOTTLENECK, stage_sizes=(3, 4, 23, 3), groups=32, base_width=8),
         num_params=88_791_336, gmacs=16.414)
_resnext("resnext101_64x4d", dict(BOTTLENECK, stage_sizes=(3, 4, 23, 3), groups=64, base_width=4),
         num_params=83_455_272, gmacs=15.460)

# Squeeze-and-excitation ResNets (Hu et al. 2018).
_se = functools.partial(_imagenet, reference=HU_2018)
_se("se_resnet50", dict(V1, stage_sizes=(3, 4, 6, 3), se_reduction=16), num_params=28_088_024, gmacs=3.860,
    notes=SE + "; stride on the first 1x1 as the authors' Caffe ResNet-50",
    reported={"imagenet/top1_error": 23.29, "imagenet/top5_error": 6.62})
_se("se_resnext50_32x4d",
    dict(BOTTLENECK, stage_sizes=(3, 4, 6, 3), groups=32, base_width=4, se_reduction=16),
    num_params=27_559_896, gmacs=4.233, notes=SE + "; stride on the 3x3 as ResNeXt")
# fmt: on
