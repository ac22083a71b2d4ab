"""Training augmentation: small composable ops of (image, seed), and the papers' recipes by name.

A recipe is one crop op, which turns a record's image (pixels or encoded bytes) into a float32
size x size x C image on [0, 1], followed by pixel ops on that image. Every op draws its randomness
from TensorFlow's stateless random ops with a seed derived from (config.seed, epoch, example index)
and the op's position, so an example's augmentation does not depend on parallelism, on the number of
processes, or on whether the run was restored from a checkpoint.

Sizes in the recipes are the papers' sizes for a 224 crop (AlexNet's 227 counts as 224); for another
crop size S they scale by S / 224, so a 32-pixel CPU test runs the same recipe in miniature.

config.input.train_augment names a recipe (PRESETS); config.input.extra_augment appends pixel ops,
written like "rotate(10),shift(0.1),vflip,noise(0.05),blur(1.0),color".
"""

from __future__ import annotations

import math
import re

from jaxcnn.data import image_ops

# AlexNet Sec. 4.1: eigenvalues and eigenvectors (columns) of the 3 x 3 covariance of ImageNet's RGB
# pixels on [0, 1], as published with fb.resnet.torch; each image gets eigvec @ (alpha * eigval),
# alpha ~ N(0, 0.1), added to every pixel.
PCA_EIGVAL = (0.2175, 0.0188, 0.0045)
PCA_EIGVEC = (
    (-0.5675, 0.7192, 0.4009),
    (-0.5808, -0.0045, -0.8140),
    (-0.5836, -0.6948, 0.4203),
)


def paper_scale(size: int) -> float:
    """Factor from the papers' 224-pixel geometry to crop size `size`."""
    return 1.0 if size in (224, 227) else size / 224


# ---- crop ops: (raw, seed, size, src) -> float32 size x size x C on [0, 1] -------------------------


def center(raw, seed, size, src, crop_ratio=0.875):
    """No randomness: the evaluation's centre view (MNIST's centred padding)."""
    del seed
    return image_ops.standard_view(raw, src, size, crop_ratio)


def random_resized_crop(raw, seed, size, src, area=(0.08, 1.0), aspect=(3 / 4, 4 / 3)):
    """Inception's crop (Szegedy et al. 2015, Sec. 6; ResNet's torch recipe): a box of 8%-100% of
    the area and aspect 3/4-4/3 (10 tries, else the whole image), resized to size x size."""
    import tensorflow as tf

    height_width = image_ops.image_size(raw, src)
    begin, box, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.concat([height_width, [src.channels]], 0),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        min_object_covered=area[0],
        aspect_ratio_range=aspect,
        area_range=area,
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    image = image_ops.decode_window(raw, (begin[0], begin[1], box[0], box[1]), src)
    return image_ops.resize(image_ops.to_float(image), size, size)


def random_square_crop(raw, seed, size, src, shorter=(256, 256), center_square=False):
    """The image resized to shorter side s ~ U{shorter} (integers, inclusive), then a random
    size x size crop; with center_square, from the central s x s square only (AlexNet Sec. 2, 4.1).

    The crop is cut from the original image at the matching scale and resized once, which is the
    resize-then-crop of the papers without resizing (or decoding) the pixels outside the crop.
    """
    import tensorflow as tf

    k_side, k_top, k_left = tf.unstack(tf.random.experimental.stateless_split(seed, 3))
    scale = paper_scale(size)
    lo, hi = round(shorter[0] * scale), round(shorter[1] * scale)
    side = tf.random.stateless_uniform([], k_side, minval=lo, maxval=hi + 1, dtype=tf.int32)
    height, width = tf.unstack(image_ops.image_size(raw, src))
    short = tf.minimum(height, width)
    window = tf.cast(tf.round(size * tf.cast(short, tf.float32) / tf.cast(side, tf.float32)), tf.int32)
    window = tf.clip_by_value(window, 1, short)
    if center_square:
        top0, left0, range_h, range_w = (height - short) // 2, (width - short) // 2, short, short
    else:
        top0, left0, range_h, range_w = 0, 0, height, width
    top = top0 + tf.random.stateless_uniform([], k_top, 0, range_h - window + 1, dtype=tf.int32)
    left = left0 + tf.random.stateless_uniform([], k_left, 0, range_w - window + 1, dtype=tf.int32)
    image = image_ops.decode_window(raw, (top, left, window, window), src)
    return image_ops.resize(image_ops.to_float(image), size, size)


def pad_and_crop(raw, seed, size, src, pad=4):
    """CIFAR (He et al. 2016, Sec. 4.2): zero-pad `pad` pixels on each side, random size x size crop."""
    import tensorflow as tf

    image = image_ops.to_float(image_ops.decode(raw, src))
    image = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
    return tf.image.stateless_random_crop(image, [size, size, src.channels], seed)


CROPS = {
    "center": center,
    "random_resized_crop": random_resized_crop,
    "random_square_crop": random_square_crop,
    "pad_and_crop": pad_and_crop,
}

# ---- pixel ops: (image on [0, 1], seed, *args) -> image ------------------------------------------


def flip(image, seed):
    """Horizontal reflection with probability 1/2."""
    import tensorflow as tf

    return tf.image.stateless_random_flip_left_right(image, seed)


def vflip(image, seed):
    """Vertical reflection with probability 1/2."""
    import tensorflow as tf

    return tf.image.stateless_random_flip_up_down(image, seed)


def lighting(image, seed, sigma=0.1):
    """AlexNet's PCA colour augmentation (Sec. 4.1): adds eigvec @ (alpha * eigval), alpha ~ N(0, sigma)."""
    import tensorflow as tf

    if image.shape[-1] != 3:
        raise ValueError(f"lighting needs RGB images; got {image.shape[-1]} channels")
    alpha = tf.random.stateless_normal([3], seed, stddev=sigma)
    delta = tf.linalg.matvec(tf.constant(PCA_EIGVEC), alpha * tf.constant(PCA_EIGVAL))
    return image + delta


def color(image, seed):
    """Inception's colour distortion (inception_preprocessing.distort_color, fast ordering):
    brightness +-32/255, saturation x[0.5, 1.5], hue +-0.2, contrast x[0.5, 1.5], clipped to [0, 1]."""
    import tensorflow as tf

    if image.shape[-1] != 3:
        raise ValueError(f"color needs RGB images; got {image.shape[-1]} channels")
    keys = tf.unstack(tf.random.experimental.stateless_split(seed, 4))
    image = tf.image.stateless_random_brightness(image, 32 / 255, keys[0])
    image = tf.image.stateless_random_saturation(image, 0.5, 1.5, keys[1])
    image = tf.image.stateless_random_hue(image, 0.2, keys[2])
    image = tf.image.stateless_random_contrast(image, 0.5, 1.5, keys[3])
    return tf.clip_by_value(image, 0.0, 1.0)


def _transform(image, matrix_rows):
    """Applies the 3 x 3 inverse map (output pixel -> input pixel), bilinear, zeros outside."""
    import tensorflow as tf

    transform = tf.reshape(tf.stack(matrix_rows)[:8], [1, 8])
    out = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform,
        output_shape=tf.shape(image)[:2],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )[0]
    out.set_shape(image.shape)
    return out


def rotate(image, seed, degrees=10.0):
    """Rotation about the centre by an angle uniform in [-degrees, degrees]; corners filled with 0."""
    import tensorflow as tf

    angle = tf.random.stateless_uniform([], seed, -degrees, degrees) * (math.pi / 180)
    height, width = tf.unstack(tf.cast(tf.shape(image)[:2], tf.float32))
    cy, cx = (height - 1) / 2, (width - 1) / 2
    cos, sin = tf.cos(angle), tf.sin(angle)
    # Output (x, y) reads input (cos*(x-cx) - sin*(y-cy) + cx, sin*(x-cx) + cos*(y-cy) + cy).
    return _transform(
        image, [cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy, 0.0, 0.0, 1.0]
    )


def shift(image, seed, fraction=0.1):
    """Translation by up to `fraction` of the width and height (uniform); uncovered pixels are 0."""
    import tensorflow as tf

    dy, dx = tf.unstack(tf.random.stateless_uniform([2], seed, -fraction, fraction))
    height, width = tf.unstack(tf.cast(tf.shape(image)[:2], tf.float32))
    return _transform(image, [1.0, 0.0, -dx * width, 0.0, 1.0, -dy * height, 0.0, 0.0, 1.0])


def affine(image, seed, shift=0.06, scale=0.1, squeeze=0.1, shear=0.15):
    """LeNet-5's distortions (LeCun et al. 1998, Sec. III-C): a random planar affine map about the
    centre combining horizontal and vertical translations (up to `shift` of the size), scaling by
    1 +- `scale`, squeezing (x by q, y by 1/q for q in 1 +- `squeeze`: one axis compressed while the
    other is elongated) and horizontal shearing (x += h * y, |h| <= `shear`); each uniform. The paper
    names the transformations but not their ranges; the defaults keep a digit inside LeNet's 32 x 32
    field. Uncovered pixels are 0 (MNIST's background)."""
    import tensorflow as tf

    tx, ty, s, q, h = tf.unstack(tf.random.stateless_uniform([5], seed, -1.0, 1.0))
    height, width = tf.unstack(tf.cast(tf.shape(image)[:2], tf.float32))
    cy, cx = (height - 1) / 2, (width - 1) / 2
    tx, ty = tx * shift * width, ty * shift * height
    s, q, h = 1 + scale * s, 1 + squeeze * q, shear * h
    # Forward (input -> output) about the centre: [[s*q, h], [0, s/q]] then (tx, ty); the transform
    # takes the inverse, output -> input: [[1/a, -h/(a*d)], [0, 1/d]] with a = s*q, d = s/q.
    a, d = s * q, s / q
    m00, m01, m11 = 1 / a, -h / (a * d), 1 / d
    ox, oy = cx + tx, cy + ty
    return _transform(image, [m00, m01, cx - m00 * ox - m01 * oy, 0.0, m11, cy - m11 * oy, 0.0, 0.0, 1.0])


def noise(image, seed, sigma=0.05):
    """Additive Gaussian noise N(0, sigma^2) per pixel and channel (not clipped)."""
    import tensorflow as tf

    return image + tf.random.stateless_normal(tf.shape(image), seed, stddev=sigma)


def blur(image, seed, sigma=1.0):
    """Gaussian blur with a standard deviation uniform in [0, sigma] pixels (separable, same size)."""
    import tensorflow as tf

    radius = max(1, math.ceil(3 * sigma))
    s = tf.maximum(tf.random.stateless_uniform([], seed, 0.0, sigma), 1e-3)
    x = tf.range(-radius, radius + 1, dtype=tf.float32)
    kernel = tf.exp(-0.5 * tf.square(x / s))
    kernel = kernel / tf.reduce_sum(kernel)
    channels = image.shape[-1]
    padded = tf.pad(image[None], [[0, 0], [radius, radius], [radius, radius], [0, 0]], mode="SYMMETRIC")
    k = tf.tile(kernel[:, None, None, None], [1, 1, channels, 1])
    out = tf.nn.depthwise_conv2d(padded, k, [1, 1, 1, 1], "VALID")
    out = tf.nn.depthwise_conv2d(out, tf.transpose(k, [1, 0, 2, 3]), [1, 1, 1, 1], "VALID")
    return out[0]


OPS = {
    "flip": flip,
    "vflip": vflip,
    "lighting": lighting,
    "color": color,
    "rotate": rotate,
    "shift": shift,
    "affine": affine,
    "noise": noise,
    "blur": blur,
}

# The papers' recipes: (crop op, its arguments), then (pixel op, its arguments)...
PRESETS = {
    "none": (("center", {}),),
    # AlexNet Sec. 4.1: shorter side 256, central 256 x 256, random 224 (227) crops, reflections, PCA.
    "alexnet": (
        ("random_square_crop", {"shorter": (256, 256), "center_square": True}),
        ("flip", {}),
        ("lighting", {"sigma": 0.1}),
    ),
    # VGG Sec. 3.1: scale jittering S in [256, 512], random 224 crop, flip, AlexNet's RGB shift.
    "vgg_scale_jitter": (
        ("random_square_crop", {"shorter": (256, 512)}),
        ("flip", {}),
        ("lighting", {"sigma": 0.1}),
    ),
    # VGG Sec. 3.1, single-scale training: S = 256 or S = 384 (Table 3's fixed-S rows).
    "vgg_s256": (("random_square_crop", {"shorter": (256, 256)}), ("flip", {}), ("lighting", {"sigma": 0.1})),
    "vgg_s384": (("random_square_crop", {"shorter": (384, 384)}), ("flip", {}), ("lighting", {"sigma": 0.1})),
    # GoogLeNet Sec. 6 / Inception v3: random-resized crop and flip; add "color" for its distortion.
    "inception_crop": (("random_resized_crop", {}), ("flip", {})),
    # ResNet Sec. 3.4: shorter side in [256, 480], random 224 crop, flip, AlexNet's colour augmentation.
    "resnet_scale": (
        ("random_square_crop", {"shorter": (256, 480)}),
        ("flip", {}),
        ("lighting", {"sigma": 0.1}),
    ),
    # ResNet Sec. 4.2 (CIFAR): pad 4, random 32 crop, flip.
    "cifar": (("pad_and_crop", {"pad": 4}), ("flip", {})),
    # LeNet-5 (LeCun et al. 1998, Sec. III-C): the centred digit, then a random planar affine distortion.
    "lecun_distortions": (("center", {}), ("affine", {})),
}

_OP_SPEC = re.compile(r"\s*(\w+)\s*(?:\(([^()]*)\))?\s*(?:,|$)")


def parse_ops(spec: str) -> tuple[tuple[str, tuple[float, ...]], ...]:
    """Parses "rotate(10),shift(0.1),vflip" into (("rotate", (10.0,)), ("shift", (0.1,)), ("vflip", ())).

    Raises:
      ValueError: naming the unknown op or the malformed text, and the known ops.
    """
    ops, pos = [], 0
    spec = spec.strip()
    while pos < len(spec):
        match = _OP_SPEC.match(spec, pos)
        if not match or match.end() == pos:
            raise ValueError(
                f"cannot parse augmentation ops {spec!r} at {spec[pos:]!r}; write e.g. 'rotate(10),vflip'"
            )
        name, args = match.group(1), match.group(2)
        if name not in OPS:
            raise ValueError(f"unknown augmentation op {name!r} in {spec!r}; known: {', '.join(OPS)}")
        try:
            values = tuple(float(a) for a in args.split(",")) if args and args.strip() else ()
        except ValueError as e:
            raise ValueError(f"augmentation op {name!r} takes numbers, got ({args})") from e
        ops.append((name, values))
        pos = match.end()
    return tuple(ops)


def recipe(train_augment: str, extra_augment: str = ""):
    """(crop op, kwargs) and the list of (pixel op, args, kwargs) for a preset plus extra ops."""
    if train_augment not in PRESETS:
        raise ValueError(f"unknown config.input.train_augment {train_augment!r}; known: {', '.join(PRESETS)}")
    (crop_name, crop_kwargs), *pixel = PRESETS[train_augment]
    ops = [(OPS[name], (), kwargs) for name, kwargs in pixel]
    ops += [(OPS[name], args, {}) for name, args in parse_ops(extra_augment)]
    return (CROPS[crop_name], crop_kwargs), ops


def train_preprocessor(
    src, size: int, normalize: str, train_augment: str, extra_augment: str = "", crop_ratio: float = 0.875
):
    """Returns fn(raw, seed) -> the normalised float32 size x size x C training image.

    `seed` is a shape-[2] int64 tensor, distinct per example; op k uses fold_in(seed, k).
    """
    import tensorflow as tf

    (crop_fn, crop_kwargs), ops = recipe(train_augment, extra_augment)
    if crop_fn is center:
        crop_kwargs = {**crop_kwargs, "crop_ratio": crop_ratio}

    def preprocess(raw, seed):
        keys = [tf.random.experimental.stateless_fold_in(seed, k) for k in range(len(ops) + 1)]
        image = crop_fn(raw, keys[0], size, src, **crop_kwargs)
        for key, (op, args, kwargs) in zip(keys[1:], ops):
            image = op(image, key, *args, **kwargs)
        return image_ops.normalize(image, src.name, normalize)

    return preprocess
