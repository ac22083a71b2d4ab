"""U-Net for per-pixel segmentation.

Ronneberger, Fischer, Brox 2015, "U-Net: Convolutional Networks for Biomedical Image
Segmentation", MICCAI, Sec. 2 and Fig. 1 (architecture), Sec. 3 (initialisation, drop-out).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from jaxcnn.registry import register_model

RONNEBERGER_2015 = "Ronneberger et al. 2015, U-Net: Convolutional Networks for Biomedical Image Segmentation"

# Sec. 3: Gaussian weights with std sqrt(2 / N), N the incoming nodes of one neuron.
HE_NORMAL = nn.initializers.he_normal()
# A 2x2/2 up-convolution's output sees one input position, so N is the input channels; flax's
# fan-in for a (2, 2, in, out) kernel is 4 * in, hence the scale 2 * 4.
UPCONV_INIT = nn.initializers.variance_scaling(8.0, "fan_in", "normal")


class DoubleConv(nn.Module):
    """Two 3x3 convolutions, each followed by a ReLU (Sec. 2)."""

    features: int
    conv: Callable[..., nn.Module]
    act: Callable[[Any], Any]

    @nn.compact
    def __call__(self, x):
        x = self.act(self.conv(self.features, (3, 3), name="conv1")(x))
        return self.act(self.conv(self.features, (3, 3), name="conv2")(x))


def center_crop(x, height: int, width: int):
    """Crops (N, H, W, C) to the central (height, width): the skip's border pixels are lost to the
    unpadded convolutions of the expansive path (Sec. 2)."""
    top, left = (x.shape[1] - height) // 2, (x.shape[2] - width) // 2
    return x[:, top : top + height, left : left + width]


class UNet(nn.Module):
    """U-Net (Fig. 1): a contracting path of double 3x3 convs and 2x2 max-pools, an expansive path of
    2x2 up-convs (halving the channels), crop-and-concat skips and double 3x3 convs, a 1x1 conv to
    the classes. Returns per-pixel logits (N, H', W', num_classes); `features_only` returns the last
    decoder feature map (N, H', W', features[0]).

    Attributes:
      features: channels per level, top to bottom (64, 128, 256, 512, 1024 in Fig. 1).
      padding: "VALID" (the paper: 572 -> 388; sizes 16 b + 124 with b >= 4) or "SAME" (output as
        large as the input; sizes divisible by 2 ** (levels - 1)).
      dropout_rate: drop-out at the end of the contracting path (Sec. 3; the rate is not given).
      conv, act, pool: the convolution, activation and max-pool (flax's nn.Conv, nn.relu, nn.max_pool).
    """

    features: tuple[int, ...] = (64, 128, 256, 512, 1024)
    padding: str = "VALID"
    dropout_rate: float = 0.5
    num_classes: int = 2
    dtype: Any = jnp.float32
    conv: Callable[..., nn.Module] = nn.Conv
    act: Callable[[Any], Any] = nn.relu
    pool: Callable = nn.max_pool

    def _check_size(self, size: int):
        if self.padding not in ("VALID", "SAME"):
            raise ValueError(f"padding must be 'VALID' or 'SAME', got {self.padding!r}")
        step = 2 ** (len(self.features) - 1)
        if self.padding == "SAME":
            if size % step:
                raise ValueError(f"unet with SAME padding needs sizes divisible by {step}, got {size}")
            return
        # Every level loses 4 pixels to two unpadded convs; every pooled map must be even and the
        # output positive. That leaves s = step * b + offset, b >= smallest (188 -> 4, 572 -> 388).
        offset = 4 * (2 * step - 1)
        smallest = -(-(4 * (step - 1) + 1) // step)
        bottom, rest = divmod(size - offset, step)
        if rest or bottom < smallest:
            first = offset + step * smallest
            raise ValueError(
                f"unet with VALID padding needs sizes {offset} + {step} b with b >= {smallest} "
                f"(e.g. {first}, {first + step}), got {size}"
            )

    @nn.compact
    def __call__(self, x, train: bool = False, features_only: bool = False):
        for size in x.shape[1:3]:
            self._check_size(size)
        conv = functools.partial(self.conv, padding=self.padding, dtype=self.dtype, kernel_init=HE_NORMAL)
        act = self.act

        x = x.astype(self.dtype)
        skips = []
        for i, features in enumerate(self.features, start=1):
            if i > 1:
                x = self.pool(x, (2, 2), strides=(2, 2))
            x = DoubleConv(features, conv, act, name=f"contract{i}")(x)
            skips.append(x)
        # Drop-out at the end of the contracting path (Sec. 3).
        x = nn.Dropout(self.dropout_rate, deterministic=not train)(skips.pop())

        for i in range(len(self.features) - 1, 0, -1):
            features = self.features[i - 1]
            x = nn.ConvTranspose(
                features, (2, 2), strides=(2, 2), padding="VALID", dtype=self.dtype,
                kernel_init=UPCONV_INIT, name=f"upconv{i}",
            )(x)  # fmt: skip
            skip = center_crop(skips.pop(), x.shape[1], x.shape[2])
            x = jnp.concatenate([skip, x], axis=-1)
            x = DoubleConv(features, conv, act, name=f"expand{i}")(x)
        if features_only:
            return x
        return self.conv(self.num_classes, (1, 1), dtype=self.dtype, kernel_init=HE_NORMAL, name="final")(x)


register_model(
    "unet", dict(features=(64, 128, 256, 512, 1024), padding="VALID"), constructor=UNet,
    input_size=(572, 572, 1), num_classes=2, reference=RONNEBERGER_2015,
    num_params=31_030_658, gmacs=150.428, small_input_size=188,
    notes="Fig. 1 exactly: unpadded 3x3 convs with bias and ReLU, no BN, 2x2/2 up-convs with bias, "
    "centre crop-and-concat, 1x1 conv to 2 classes; 572x572x1 -> 388x388x2. Drop-out 0.5 (rate our "
    "choice) on the 1024-channel bottom map. Returns per-pixel logits (N, H', W', classes); "
    "padding='SAME' gives the same-size variant",
)  # fmt: skip
