"""The papers' evaluation protocols: the views of one test image whose scores are averaged.

Each protocol turns one image into groups of same-sized views, each group a float32 tensor
(V, H, W, C); the evaluator averages the model's softmax scores over all views of an image.

  center       (1, S, S, C): shorter side round(S / crop_ratio), centre crop (224/256; 299/342).
  ten_crop     (10, S, S, C): AlexNet Sec. 4.1: from the image resized to shorter side
               R = round(S / crop_ratio) and cut to its central R x R square, the four corner and the
               centre S x S patches, then the same five mirrored. Order: TL, TR, BL, BR, C, and the
               mirrors of TL, TR, BL, BR, C.
  multi_scale  one group (2, Q, Q, C) per Q in config.eval.scales: the image resized to shorter side
               Q, its central Q x Q square, and its mirror (VGG Table 4, ResNet Table 4 average the
               fully convolutional scores of the whole Q x W image; batching needs one shape, so the
               central square stands for it).
  crops144     (144, S, S, C): GoogLeNet Sec. 10: shorter side 256, 288, 320, 352; the left, centre
               and right squares (top, centre, bottom for portrait images); in each, the four corner
               and centre S x S crops and the square resized to S; all mirrored. Order: scale, then
               square, then (TL, TR, BL, BR, C, resized); the 72 mirrors follow in the same order.

Sizes are the papers' for S = 224 and scale by S / 224 for other crop sizes (crops144 only; the
multi-scale sides are taken as given).
"""

from __future__ import annotations

from jaxcnn.data import augment, image_ops

PROTOCOLS = ("center", "ten_crop", "multi_scale", "crops144")
GOOGLENET_SIDES = (256, 288, 320, 352)


def check_protocol(protocol: str) -> None:
    """Raises ValueError unless `protocol` is one of PROTOCOLS."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown evaluation protocol {protocol!r}; known: {', '.join(PROTOCOLS)}")


def check_config(eval_config) -> None:
    """Checks config.eval: the protocols (center first), the crop ratio and the multi-scale sides."""
    protocols = tuple(eval_config.protocols)
    if not protocols or protocols[0] != "center":
        raise ValueError(f"config.eval.protocols must start with 'center', got {protocols}")
    for protocol in protocols:
        check_protocol(protocol)
    if not 0.0 < eval_config.crop_ratio <= 1.0:
        raise ValueError(f"config.eval.crop_ratio must be in (0, 1], got {eval_config.crop_ratio!r}")
    for scale in eval_config.scales:
        if isinstance(scale, bool) or not isinstance(scale, int) or scale <= 0:
            raise ValueError(f"config.eval.scales must be positive ints, got {tuple(eval_config.scales)}")


def ten_crop_boxes(height, width, size):
    """(top, left) of the TL, TR, BL, BR and centre size x size crops of a height x width image.

    Works on Python ints and on int32 tensors.
    """
    dy, dx = height - size, width - size
    return [(0, 0), (0, dx), (dy, 0), (dy, dx), (dy // 2, dx // 2)]


def googlenet_squares(height, width):
    """(top, left) of the left/centre/right (landscape) or top/centre/bottom (portrait) squares."""
    side = min(height, width) if isinstance(height, int) else None
    if side is None:
        import tensorflow as tf

        side = tf.minimum(height, width)
    dy, dx = height - side, width - side  # one of them is 0
    return [(0, 0), (dy // 2, dx // 2), (dy, dx)]


def crops144_sides(size: int) -> tuple[int, ...]:
    return tuple(round(s * augment.paper_scale(size)) for s in GOOGLENET_SIDES)


def view_shapes(protocol: str, size: int, channels: int, scales=()) -> list[tuple[int, ...]]:
    """The (V, H, W, C) shape of each view group, in order."""
    if protocol == "center":
        return [(1, size, size, channels)]
    if protocol == "ten_crop":
        return [(10, size, size, channels)]
    if protocol == "multi_scale":
        return [(2, q, q, channels) for q in scales]
    if protocol == "crops144":
        return [(144, size, size, channels)]
    check_protocol(protocol)  # raises: unknown
    raise AssertionError(protocol)


def _five_crops(square, side: int, size: int):
    return [image_ops.crop(square, top, left, size, size) for top, left in ten_crop_boxes(side, side, size)]


def _with_mirrors(views):
    import tensorflow as tf

    views = tf.stack(views)
    return tf.concat([views, image_ops.hflip(views)], 0)


def view_fn(protocol: str, src, size: int, crop_ratio: float, scales, normalize: str):
    """Returns fn(raw) -> tuple of normalised float32 view groups (see the module docstring)."""
    import tensorflow as tf

    view_shapes(protocol, size, src.channels, scales)  # validates the protocol

    def center(raw):
        return (image_ops.standard_view(raw, src, size, crop_ratio)[None],)

    def ten_crop(raw):
        side = round(size / crop_ratio)
        image = image_ops.resize_shorter(image_ops.to_float(image_ops.decode(raw, src)), side)
        return (_with_mirrors(_five_crops(image_ops.center_crop(image, side), side, size)),)

    def multi_scale(raw):
        image = image_ops.to_float(image_ops.decode(raw, src))
        groups = []
        for q in scales:
            square = image_ops.center_crop(image_ops.resize_shorter(image, q), q)
            groups.append(_with_mirrors([square]))
        return tuple(groups)

    def crops144(raw):
        image = image_ops.to_float(image_ops.decode(raw, src))
        views = []
        for side in crops144_sides(size):
            scaled = image_ops.resize_shorter(image, side)
            shape = tf.shape(scaled)
            for top, left in googlenet_squares(shape[0], shape[1]):
                square = image_ops.crop(scaled, top, left, side, side)
                views += _five_crops(square, side, size)
                views.append(image_ops.resize(square, size, size))
        return (_with_mirrors(views),)

    make = {"center": center, "ten_crop": ten_crop, "multi_scale": multi_scale, "crops144": crops144}
    make = make[protocol]

    def views(raw):
        return tuple(image_ops.normalize(group, src.name, normalize) for group in make(raw))

    return views
