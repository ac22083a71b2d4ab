"""Segmentation augmentation: the U-Net paper's elastic deformation, shifts, rotations and flips.

One geometric map per example sends each pixel of the output tile to a source position in the
image; the image is resampled there with linear interpolation (spline order
config.input.interpolation) and the class and instance masks with nearest neighbour, so the three
stay aligned. Positions outside the image are mirrored back into it (the paper's mirror padding,
Fig. 2); they carry weight 0 in the loss (the `valid` mask).

The map, for an output pixel p of a tile whose top-left corner lies at `offset` in the image frame
(c is the image centre):
    q = p + offset                                   (the tile; offset < 0 when padding a small image)
    q = c + F R (q - c) - t                          (flips F, rotation R, shift t)
    q = q + D(q)                                     (elastic displacement)
D is the paper's elastic deformation (Sec. 3.1): displacement vectors drawn from N(0, sigma^2) on a
coarse g x g grid spanning the image, interpolated to every pixel by a cubic spline (bicubic).

Config keys (config.input; absent keys take the value in brackets, i.e. no augmentation):
  elastic_sigma [0.0]: the displacements' standard deviation in pixels (the paper: 10); 0 = off.
  elastic_grid [3]: g, the coarse grid's points per side (the paper: 3).
  rotate_degrees [0.0]: rotations uniform in [-r, r] degrees.
  shift_pixels [0.0]: shifts uniform in [-s, s] pixels along each axis.
  flip [""]: "" none, "h" left-right, "v" up-down, "hv" both (each with probability 1/2).
  interpolation [1]: the image's spline order (0 nearest, 1 linear, 3 cubic).
All random draws come from one numpy Generator, seeded per example by the pipeline.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from scipy import ndimage

FLIPS = ("", "h", "v", "hv")


@dataclasses.dataclass(frozen=True)
class Augment:
    """The augmentation settings, read from config.input."""

    elastic_sigma: float = 0.0
    elastic_grid: int = 3
    rotate_degrees: float = 0.0
    shift_pixels: float = 0.0
    flip: str = ""
    interpolation: int = 1


def _number(value, key: str, *, positive: bool = False) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or value < 0
        or (positive and not value)
    ):
        raise ValueError(f"config.input.{key} must be a number {'>' if positive else '>='} 0, got {value!r}")
    return float(value)


def params_from_config(input_config) -> Augment:
    """config.input -> Augment; ValueError names a bad value (absent keys: no augmentation)."""
    get = input_config.get
    grid, order, flip = get("elastic_grid", 3), get("interpolation", 1), get("flip", "")
    if isinstance(grid, bool) or not isinstance(grid, int) or grid < 2:
        raise ValueError(f"config.input.elastic_grid must be an int >= 2, got {grid!r}")
    if order not in (0, 1, 3) or isinstance(order, bool):
        raise ValueError(f"config.input.interpolation={order!r}; allowed: 0, 1, 3 (spline order)")
    if flip not in FLIPS:
        raise ValueError(f"config.input.flip={flip!r}; allowed: {', '.join(repr(f) for f in FLIPS)}")
    return Augment(
        elastic_sigma=_number(get("elastic_sigma", 0.0), "elastic_sigma"),
        elastic_grid=grid,
        rotate_degrees=_number(get("rotate_degrees", 0.0), "rotate_degrees"),
        shift_pixels=_number(get("shift_pixels", 0.0), "shift_pixels"),
        flip=flip,
        interpolation=order,
    )


def elastic_field(shape: tuple[int, int], sigma: float, grid: int, rng: np.random.Generator) -> np.ndarray:
    """The paper's smooth displacement field: float64 (2, H, W), N(0, sigma^2) at g x g grid points."""
    coarse = rng.normal(0.0, sigma, size=(2, grid, grid))
    h, w = shape
    # Grid point (i, j) sits at pixel (i (H-1)/(g-1), j (W-1)/(g-1)): the grid spans the image.
    ys, xs = np.meshgrid(np.linspace(0, grid - 1, h), np.linspace(0, grid - 1, w), indexing="ij")
    return np.stack([ndimage.map_coordinates(c, [ys, xs], order=3, mode="mirror") for c in coarse])


def source_coordinates(
    image_shape: tuple[int, int],
    tile: tuple[int, int],
    offset: tuple[int, int],
    params: Augment,
    rng: np.random.Generator,
) -> np.ndarray:
    """Where each pixel of the output tile is read from: float64 (2, tile_h, tile_w) image positions.

    Args:
      image_shape: (H, W) of the source image.
      tile: (h, w) of the output.
      offset: the tile's top-left corner in the image frame (negative: the image is padded).
      params: the augmentation; draws, in this order, flips, angle, shift, displacements.
      rng: the example's generator.
    """
    h, w = image_shape
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    y, x = np.meshgrid(
        np.arange(tile[0], dtype=np.float64) + offset[0] - cy,
        np.arange(tile[1], dtype=np.float64) + offset[1] - cx,
        indexing="ij",
    )
    if "h" in params.flip and rng.random() < 0.5:
        x = -x
    if "v" in params.flip and rng.random() < 0.5:
        y = -y
    if params.rotate_degrees:
        angle = math.radians(rng.uniform(-params.rotate_degrees, params.rotate_degrees))
        cos, sin = math.cos(angle), math.sin(angle)
        y, x = cos * y - sin * x, sin * y + cos * x
    if params.shift_pixels:
        ty, tx = rng.uniform(-params.shift_pixels, params.shift_pixels, size=2)
        y, x = y - ty, x - tx
    coords = np.stack([y + cy, x + cx])
    if params.elastic_sigma:
        field = elastic_field((h, w), params.elastic_sigma, params.elastic_grid, rng)
        # The field is defined on the image; read it (linearly, it is smooth) where each pixel lands.
        clipped = [np.clip(coords[0], 0, h - 1), np.clip(coords[1], 0, w - 1)]
        coords = coords + np.stack([ndimage.map_coordinates(f, clipped, order=1) for f in field])
    return coords


def inside(coords: np.ndarray, image_shape: tuple[int, int]) -> np.ndarray:
    """bool (h, w): the tile pixels read from inside the image (not from its mirror image)."""
    h, w = image_shape
    y, x = coords
    return (y > -0.5) & (y < h - 0.5) & (x > -0.5) & (x < w - 0.5)


def warp_image(image: np.ndarray, coords: np.ndarray, order: int = 1) -> np.ndarray:
    """HxWxC image (any dtype) resampled at `coords`: float32 (h, w, C), mirrored outside."""
    channels = [
        ndimage.map_coordinates(image[..., c].astype(np.float32), coords, order=order, mode="mirror")
        for c in range(image.shape[-1])
    ]
    out = np.stack(channels, axis=-1)
    if order > 1:  # cubic splines overshoot: keep the pixel range
        out = np.clip(out, 0.0, 255.0)
    return out


def warp_labels(labels: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """HxW integer ids resampled at `coords` by nearest neighbour: int32 (h, w), mirrored outside."""
    return ndimage.map_coordinates(np.asarray(labels, np.int32), coords, order=0, mode="mirror")
