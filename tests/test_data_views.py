"""Evaluation views: the crops sit where the papers put them, flips flip, scales are what they claim."""

import numpy as np
import pytest
import tensorflow as tf

from jaxcnn.data import image_ops, views

SRC = image_ops.Source("image_folder", 3, encoded=False)


def _coords(height, width):
    """uint8 image whose pixel (y, x) holds (y, x, 7)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([y, x, np.full_like(y, 7)], -1).astype(np.uint8)


def _views(protocol, image, size=32, crop_ratio=0.875, scales=()):
    fn = views.view_fn(protocol, SRC, size, crop_ratio, scales, "unit")
    return [np.round(g.numpy() * 255, 3) for g in fn(tf.constant(image))]


def test_ten_crop_boxes_are_the_corners_and_the_centre():
    assert views.ten_crop_boxes(256, 256, 224) == [(0, 0), (0, 32), (32, 0), (32, 32), (16, 16)]
    assert views.ten_crop_boxes(37, 50, 32) == [(0, 0), (0, 18), (5, 0), (5, 18), (2, 9)]


def test_ten_crop_views_are_distinct_and_at_the_right_coordinates():
    # A 37 x 37 image is already at shorter side round(32 / 0.875) = 37: crops are exact slices.
    image = _coords(37, 37)
    (group,) = _views("ten_crop", image)
    assert group.shape == (10, 32, 32, 3)
    for k, (top, left) in enumerate(views.ten_crop_boxes(37, 37, 32)):
        np.testing.assert_array_equal(group[k], image[top : top + 32, left : left + 32])
        np.testing.assert_array_equal(group[5 + k], group[k][:, ::-1])  # the mirrors follow
    assert len({g.tobytes() for g in group}) == 10


def test_ten_crop_is_taken_from_the_central_square_of_a_landscape_image():
    (group,) = _views("ten_crop", _coords(37, 57))  # central 37 x 37 square starts at x = 10
    assert group[0][0, 0, 1] == 10 and group[1][0, -1, 1] == 10 + 36


def test_center_view_geometry():
    (group,) = _views("center", _coords(37, 45))  # already at shorter side 37: crop (2, 6)
    assert group.shape == (1, 32, 32, 3)
    assert tuple(group[0, 0, 0, :2]) == (2, 6)
    (group,) = _views("center", _coords(342, 400), size=299, crop_ratio=299 / 342)
    assert group.shape == (1, 299, 299, 3) and tuple(group[0, 0, 0, :2]) == (21, 50)


def test_multi_scale_sees_the_sizes_it_claims():
    scales = (20, 28, 36, 48)
    groups = _views("multi_scale", _coords(40, 60), scales=scales)
    assert [g.shape for g in groups] == [(2, q, q, 3) for q in scales]
    assert views.view_shapes("multi_scale", 32, 3, scales) == [(2, q, q, 3) for q in scales]
    for q, g in zip(scales, groups):
        np.testing.assert_array_equal(g[1], g[0][:, ::-1])
        # The whole height is kept at shorter side q: the first row comes from y = 0, the last from 39.
        assert g[0][0, q // 2, 0] < 1.5 and g[0][-1, q // 2, 0] > 37.5


def test_googlenet_squares():
    assert views.googlenet_squares(256, 341) == [(0, 0), (0, 42), (0, 85)]  # left, centre, right
    assert views.googlenet_squares(341, 256) == [(0, 0), (42, 0), (85, 0)]  # top, centre, bottom
    assert views.crops144_sides(224) == (256, 288, 320, 352)


def test_crops144_count_order_and_mirrors():
    image = _coords(60, 90)
    (group,) = _views("crops144", image)
    assert group.shape == (144, 32, 32, 3)
    np.testing.assert_array_equal(group[72:], group[:72, :, ::-1])
    assert len({v.tobytes() for v in group[:72]}) == 72
    # Scale 1 (shorter side 37), left square: its top-left crop starts at x = 0; the right square's
    # top-right crop ends at the right edge (x = 89 in the original).
    left_tl, right_tr = group[0], group[2 * 6 + 1]
    assert left_tl[0, 0, 1] < 1.5 and right_tr[0, -1, 1] > 87
    # The sixth view of a square is the whole square resized: it spans the square's full height.
    assert group[5][0, 16, 0] < 1.5 and group[5][-1, 16, 0] > 57


def test_unknown_protocol_is_named():
    with pytest.raises(ValueError, match="unknown evaluation protocol 'five_crop'; known: center"):
        views.view_fn("five_crop", SRC, 32, 0.875, (), "unit")
