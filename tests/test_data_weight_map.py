"""The U-Net weight map (jaxcnn/data/weight_map.py): the border term against hand-computed values,
the class balancing's normalisation, and the windowed distances against a brute-force computation."""

import math

import ml_collections
import numpy as np
import pytest
from scipy import ndimage

from jaxcnn.data import weight_map


def two_touching_instances():
    """6 x 10: rows 0-1 background; rows 2-5 instance 1 (columns 0-3), a one-pixel background gap
    (column 4), instance 2 (columns 5-9): two cells separated by a thin border, as in the paper."""
    inst = np.zeros((6, 10), np.int32)
    inst[2:, 0:4] = 1
    inst[2:, 5:] = 2
    return inst


def test_border_term_matches_hand_computed_values():
    inst = two_touching_instances()
    w = weight_map.border_term(inst, w0=10.0, sigma=5.0)

    def expected(d1, d2):
        return 10.0 * math.exp(-((d1 + d2) ** 2) / (2 * 5.0**2))

    # The gap between the cells: 1 pixel from each.
    assert w[3, 4] == pytest.approx(expected(1, 1), rel=1e-6)  # 10 exp(-4/50) = 9.231
    assert w[3, 4] == pytest.approx(9.2311635, rel=1e-6)
    # Above the gap: (2, 3) and (2, 5) are sqrt(2^2 + 1^2) away.
    assert w[0, 4] == pytest.approx(expected(math.sqrt(5), math.sqrt(5)), rel=1e-6)  # 10 exp(-20/50)
    # Above instance 1's corner: 1 from (2, 0), sqrt(1 + 25) from (2, 5).
    assert w[1, 0] == pytest.approx(expected(1, math.sqrt(26)), rel=1e-6)
    # Above the far end of instance 2: 1 from (2, 9); instance 1's nearest pixel (2, 3) is sqrt(1 + 36).
    assert w[1, 9] == pytest.approx(expected(1, math.sqrt(37)), rel=1e-6)
    # Instance pixels get no border term.
    assert np.all(w[inst > 0] == 0)


def test_weight_map_adds_class_weights_and_border_term():
    inst = two_touching_instances()
    mask = np.where(inst > 0, 1, 0)
    params = weight_map.LossWeights(w0=10.0, sigma=5.0)
    class_w = np.array([0.5, 2.0], np.float32)
    w = weight_map.weight_map(mask, inst, class_w, params)
    assert w[3, 4] == pytest.approx(0.5 + 10.0 * math.exp(-4 / 50), rel=1e-6)
    assert np.all(w[inst > 0] == 2.0)
    assert w.dtype == np.float32


def test_without_instances_or_w0_only_class_weights():
    inst = two_touching_instances()
    mask = np.where(inst > 0, 1, 0)
    class_w = np.array([0.5, 2.0], np.float32)
    on = weight_map.LossWeights(w0=10.0, sigma=5.0)
    off = weight_map.LossWeights(w0=0.0, sigma=5.0)
    np.testing.assert_array_equal(weight_map.weight_map(mask, None, class_w, on), class_w[mask])
    np.testing.assert_array_equal(weight_map.weight_map(mask, inst, class_w, off), class_w[mask])
    one = np.where(inst == 1, 1, 0)  # a single instance: no second-nearest, no border term
    assert not weight_map.border_term(one, 10.0, 5.0).any()


def test_inverse_class_balance_normalised_to_mean_one():
    masks = [np.array([[0, 0], [0, 1]]), np.array([[0, 0], [0, 0]])]  # 7 background, 1 class-1, 0 class-2
    w = weight_map.class_weights(masks, 3, "inverse")
    # raw 1/7, 1/1, 0; mean over the pixels (7/7 + 1) / 8 = 1/4 -> 4/7, 4, 0.
    np.testing.assert_allclose(w, [4 / 7, 4.0, 0.0], rtol=1e-6)
    pixels = np.concatenate([m.ravel() for m in masks])
    assert w[pixels].mean() == pytest.approx(1.0)
    sqrt = weight_map.class_weights(masks, 3, "sqrt")
    assert sqrt[pixels].mean() == pytest.approx(1.0) and sqrt[1] / sqrt[0] == pytest.approx(math.sqrt(7))
    np.testing.assert_array_equal(weight_map.class_weights(masks, 3, "none"), np.ones(3))


def test_windowed_distances_equal_brute_force():
    rng = np.random.default_rng(0)
    inst = np.zeros((90, 100), np.int32)
    for k in range(1, 7):  # six blobs, some far apart (beyond the window), some touching
        y, x = rng.integers(0, 80, 2)
        inst[y : y + 10, x : x + 12] = k
    ids = [i for i in np.unique(inst) if i > 0]
    d = np.sort(np.stack([ndimage.distance_transform_edt(inst != i) for i in ids]), axis=0)
    brute = 10.0 * np.exp(-((d[0] + d[1]) ** 2) / (2 * 4.0**2)) * (inst == 0)
    np.testing.assert_allclose(weight_map.border_term(inst, 10.0, 4.0), brute, atol=1e-6)


def test_config_keys_are_checked():
    loss = ml_collections.ConfigDict({"w0": 10.0, "sigma": 5.0, "class_balance": True})
    assert weight_map.params_from_config(loss) == weight_map.LossWeights(10.0, 5.0, "inverse")
    assert weight_map.params_from_config(ml_collections.ConfigDict()) == weight_map.LossWeights()
    with pytest.raises(ValueError, match="class_balance='median'.*none, inverse, sqrt"):
        weight_map.params_from_config(ml_collections.ConfigDict({"class_balance": "median"}))
    with pytest.raises(ValueError, match="sigma must be a number > 0"):
        weight_map.params_from_config(ml_collections.ConfigDict({"sigma": 0.0}))
