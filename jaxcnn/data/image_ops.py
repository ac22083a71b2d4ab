"""Image primitives shared by training augmentation and evaluation views (all TensorFlow, in tf.data).

A record's image is either pixels (uint8 H x W x C, e.g. MNIST, CIFAR) or encoded bytes (JPEG for
ImageNet; JPEG or PNG in an image folder). For encoded JPEGs, `decode_window` decodes only the crop
window (tf.image.decode_and_crop_jpeg), so a random crop never decodes the pixels it throws away.
"""

from __future__ import annotations

import dataclasses

from jaxcnn.data import datasets

NORMALIZATIONS = ("lecun", "standardize", "unit")
# One resampling method everywhere, so training and evaluation see images resized the same way.
# Antialiasing keeps downscaled photographs (500 px -> 224 px) free of aliasing, as PIL does.
RESIZE = {"method": "bilinear", "antialias": True}


@dataclasses.dataclass(frozen=True)
class Source:
    """What the pipeline knows statically about a split's images."""

    name: str  # dataset name, for its pixel statistics
    channels: int
    encoded: bool  # records hold encoded bytes (decode in the pipeline)
    image_shape: tuple | None = None  # (H, W, C) when all images share it (MNIST, CIFAR)


def source_of(split) -> Source:
    return Source(split.name, split.channels, split.encoded, split.image_shape)


def check_pixels(image) -> None:
    """Raises ValueError unless `image` is a uint8 (H, W, C) tensor with 1 or 3 channels."""
    import tensorflow as tf

    shape = image.shape
    if shape.rank != 3 or shape[-1] not in (1, 3) or image.dtype != tf.uint8:
        raise ValueError(
            f"expected a uint8 image of shape (height, width, channels) with 1 or 3 channels, "
            f"got shape {tuple(shape) if shape.rank is not None else None} and dtype {image.dtype.name}"
        )


def _decode_any(raw, channels):
    import tensorflow as tf

    image = tf.io.decode_image(raw, channels=channels, expand_animations=False)
    image.set_shape([None, None, channels])
    return image


def decode(raw, src: Source):
    """The whole image as uint8 H x W x C."""
    import tensorflow as tf

    if not src.encoded:
        check_pixels(raw)
        return raw
    if src.name in datasets.JPEG_DATASETS:
        return tf.io.decode_jpeg(raw, channels=src.channels)
    return _decode_any(raw, src.channels)


def image_size(raw, src: Source):
    """(height, width) int32 without decoding the pixels of a JPEG."""
    import tensorflow as tf

    if not src.encoded:
        check_pixels(raw)
        return tf.shape(raw)[:2]
    if src.name in datasets.JPEG_DATASETS:
        return tf.image.extract_jpeg_shape(raw)[:2]
    return tf.cond(
        tf.io.is_jpeg(raw),
        lambda: tf.image.extract_jpeg_shape(raw)[:2],
        lambda: tf.shape(_decode_any(raw, src.channels))[:2],
    )


def decode_window(raw, window, src: Source):
    """The uint8 crop (top, left, height, width) of the image; JPEGs decode only that window."""
    import tensorflow as tf

    top, left, height, width = window
    if not src.encoded:
        check_pixels(raw)
        return tf.slice(raw, tf.stack([top, left, 0]), tf.stack([height, width, -1]))

    def jpeg():
        return tf.image.decode_and_crop_jpeg(raw, tf.stack(window), channels=src.channels)

    def other():
        image = _decode_any(raw, src.channels)
        return tf.slice(image, tf.stack([top, left, 0]), tf.stack([height, width, -1]))

    if src.name in datasets.JPEG_DATASETS:
        out = jpeg()
    else:
        out = tf.cond(tf.io.is_jpeg(raw), jpeg, other)
    out.set_shape([None, None, src.channels])
    return out


def to_float(image):
    """uint8 -> float32 on [0, 1]."""
    import tensorflow as tf

    return tf.cast(image, tf.float32) / 255.0


def resize(image, height, width):
    import tensorflow as tf

    return tf.image.resize(image, tf.stack([height, width]), **RESIZE)


def shorter_side_size(height, width, side):
    """(new_height, new_width) with the shorter side equal to `side`, the aspect ratio kept.

    Works on Python ints (for tests) and on int32 tensors (in the pipeline).
    """
    if isinstance(height, int) and isinstance(width, int):
        if height <= width:
            return side, max(side, round(width * side / height))
        return max(side, round(height * side / width)), side
    import tensorflow as tf

    h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    short = tf.minimum(h, w)
    new_h = tf.cast(tf.round(h * side / short), tf.int32)
    new_w = tf.cast(tf.round(w * side / short), tf.int32)
    return tf.maximum(new_h, side), tf.maximum(new_w, side)


def resize_shorter(image, side):
    """Resizes float `image` so that its shorter side is `side` (a Python int)."""
    import tensorflow as tf

    shape = tf.shape(image)
    height, width = shorter_side_size(shape[0], shape[1], side)
    return resize(image, height, width)


def crop(image, top, left, height: int, width: int):
    """A static-size crop at (possibly dynamic) offsets."""
    import tensorflow as tf

    return tf.image.crop_to_bounding_box(image, top, left, height, width)


def center_crop(image, size: int):
    import tensorflow as tf

    shape = tf.shape(image)
    return crop(image, (shape[0] - size) // 2, (shape[1] - size) // 2, size, size)


def hflip(image):
    import tensorflow as tf

    return tf.reverse(image, axis=[-2])


def standard_view(raw, src: Source, size: int, crop_ratio: float):
    """The one evaluation view (and the unaugmented training input): float32 size x size x C on [0, 1].

    Small fixed-size datasets keep their pixels: an image smaller than `size` is padded, centred
    (LeNet-5 sees the 28 x 28 digit in a 32 x 32 field, Sec. III-A), one of the same size is left
    alone. Other images are resized to shorter side round(size / crop_ratio) and centre-cropped.
    """
    import tensorflow as tf

    if src.image_shape is not None and max(src.image_shape[:2]) <= size:
        image = to_float(decode(raw, src))
        height, width = src.image_shape[:2]
        if (height, width) != (size, size):
            dy, dx = size - height, size - width
            image = tf.pad(image, [[dy // 2, dy - dy // 2], [dx // 2, dx - dx // 2], [0, 0]])
        return image
    image = resize_shorter(to_float(decode(raw, src)), round(size / crop_ratio))
    return center_crop(image, size)


def normalize(image, name: str, mode: str):
    """Maps a [0, 1] image to the model's input range.

    "standardize": per-channel (x - mean) / std with the dataset's statistics (datasets.MEAN_STD);
    "lecun": LeNet's background -0.1 and ink 1.175, mean about 0 and variance about 1 (Sec. II-A);
    "unit": unchanged.
    """
    if mode == "lecun":
        return image * 1.275 - 0.1
    if mode == "standardize":
        mean, std = datasets.MEAN_STD[name]
        return (image - mean) / std
    if mode == "unit":
        return image
    raise ValueError(f"unknown normalize {mode!r}; allowed: {NORMALIZATIONS}")
