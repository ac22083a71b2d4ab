"""Augmentation ops: the papers' geometry and statistics, determinism from the seed, clear errors."""

import numpy as np
import pytest
import tensorflow as tf

from jaxcnn.data import augment, image_ops

RGB = image_ops.Source("image_folder", 3, encoded=False)


def _seed(k):
    return tf.constant([k, 1000 + k], tf.int64)


def _coords(height, width, step=1):
    """uint8 image whose pixel (y, x) holds (y // step, x // step, 7): crops show where they came from."""
    y, x = np.mgrid[0:height, 0:width] // step
    return np.stack([y, x, np.full_like(y, 7)], -1).astype(np.uint8)


def test_parse_ops_and_errors():
    assert augment.parse_ops("rotate(10), shift(0.1),vflip,noise(0.05),blur(1.0)") == (
        ("rotate", (10.0,)),
        ("shift", (0.1,)),
        ("vflip", ()),
        ("noise", (0.05,)),
        ("blur", (1.0,)),
    )
    assert augment.parse_ops("") == ()
    with pytest.raises(ValueError, match="unknown augmentation op 'twirl'.*known: flip"):
        augment.parse_ops("flip,twirl(3)")
    with pytest.raises(ValueError, match="takes numbers, got \\(a\\)"):
        augment.parse_ops("rotate(a)")
    with pytest.raises(ValueError, match="cannot parse"):
        augment.parse_ops("rotate(10")
    with pytest.raises(ValueError, match="unknown config.input.train_augment 'autoaugment'"):
        augment.recipe("autoaugment")


@pytest.mark.parametrize("preset", sorted(augment.PRESETS))
def test_every_preset_gives_the_crop_size_and_depends_only_on_the_seed(preset):
    raw = tf.constant(np.random.default_rng(0).integers(0, 255, (45, 60, 3), np.uint8))
    prep = augment.train_preprocessor(RGB, 32, "standardize", preset, "rotate(5),noise(0.01)")
    a, b, c = (prep(raw, _seed(k)).numpy() for k in (1, 1, 2))
    assert a.shape == (32, 32, 3) and a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_flip_mirrors_about_half_the_time():
    image = tf.constant(np.random.default_rng(1).random((5, 7, 3), np.float32))
    flipped = [not np.array_equal(augment.flip(image, _seed(k)).numpy(), image.numpy()) for k in range(200)]
    for k in range(5):
        out = augment.flip(image, _seed(k)).numpy()
        assert np.array_equal(out, image.numpy()) or np.array_equal(out, image.numpy()[:, ::-1])
    assert 70 < sum(flipped) < 130
    vflipped = augment.vflip(image, _seed(next(k for k in range(200) if flipped[k]))).numpy()
    assert np.array_equal(vflipped, image.numpy()) or np.array_equal(vflipped, image.numpy()[::-1])


def test_pca_lighting_shifts_colour_along_alexnets_eigenvectors():
    image = tf.fill((4, 4, 3), 0.5)
    deltas = np.stack([(augment.lighting(image, _seed(k)) - image).numpy() for k in range(1000)])
    # One colour shift per image, the same at every pixel.
    np.testing.assert_allclose(deltas, np.broadcast_to(deltas[:, :1, :1], deltas.shape), atol=1e-6)
    shift = deltas[:, 0, 0]  # (1000, 3)
    alphas = shift @ np.asarray(augment.PCA_EIGVEC) / np.asarray(augment.PCA_EIGVAL)  # eigvec ~ orthonormal
    assert np.all(np.abs(alphas.mean(0)) < 0.015)
    np.testing.assert_allclose(alphas.std(0), 0.1, rtol=0.1)  # alpha ~ N(0, 0.1), AlexNet Sec. 4.1
    # The luminance direction dominates: eigenvalue 0.2175 against 0.0188 and 0.0045.
    assert np.abs(shift.sum(1)).mean() > 5 * np.abs(shift[:, 0] - shift[:, 2]).mean()
    with pytest.raises(ValueError, match="lighting needs RGB images; got 1 channels"):
        augment.lighting(tf.zeros((4, 4, 1)), _seed(0))


def test_random_square_crop_cuts_a_square_at_the_scale_of_the_shorter_side():
    # 256 x 384 image, the paper's geometry (size 224): shorter side 256 -> the window is 224 pixels.
    raw = tf.constant(_coords(256, 384, step=2))  # values fit uint8
    window_sides = set()
    for k in range(20):
        out = augment.random_square_crop(raw, _seed(k), 224, RGB, shorter=(256, 256), center_square=True)
        assert out.shape == (224, 224, 3)
        left = out.numpy()[0, 0, 1] * 255 * 2
        assert 64 - 1 <= left <= 64 + 32 + 1  # inside the central 256 x 256 square (x in [64, 320))
        window_sides.add(round((out.numpy()[-1, -1, 1] - out.numpy()[0, 0, 1]) * 255 * 2))
    assert window_sides <= {222, 223, 224}  # a crop, not a resize of the whole image


def test_scale_jitter_draws_the_shorter_side_from_the_papers_range():
    raw = tf.constant(_coords(100, 100))
    sides = []
    for k in range(60):
        out = augment.random_square_crop(raw, _seed(k), 224, RGB, shorter=(256, 512)).numpy()
        span = (out[-1, -1, 0] - out[0, 0, 0]) * 255 + 1  # source pixels spanned by the crop
        sides.append(224 * 100 / span)
    assert 240 < min(sides) < 290 and 440 < max(sides) < 560


def test_random_resized_crop_area_and_aspect():
    raw = tf.constant(_coords(200, 200))
    areas, aspects = [], []
    for k in range(100):
        out = augment.random_resized_crop(raw, _seed(k), 16, RGB).numpy() * 255
        height = out[-1, 0, 0] - out[0, 0, 0] + 12.5  # spans of the 16 sampled rows and columns
        width = out[0, -1, 1] - out[0, 0, 1] + 12.5
        areas.append(height * width / 200**2)
        aspects.append(width / height)
    assert 0.06 < min(areas) < 0.3 and max(areas) > 0.7
    assert 0.65 < min(aspects) and max(aspects) < 1.5


def test_jpeg_crop_is_decoded_from_the_window_only():
    from jaxcnn.data import fake

    image = fake.random_image(np.random.default_rng(2), 60, 80)
    jpeg = tf.constant(fake.jpeg_bytes(image))
    src = image_ops.Source("imagenet2012", 3, encoded=True)
    assert image_ops.image_size(jpeg, src).numpy().tolist() == [60, 80]
    window = image_ops.decode_window(
        jpeg, (tf.constant(8), tf.constant(16), tf.constant(24), tf.constant(32)), src
    )
    full = tf.io.decode_jpeg(jpeg).numpy()
    assert window.shape == (24, 32, 3)
    difference = np.abs(window.numpy().astype(int) - full[8:32, 16:48].astype(int))
    assert difference.mean() < 0.5 and difference.max() <= 8  # chroma upsampling differs at the edges


def test_cifar_pad_and_crop_shifts_by_at_most_four():
    image = np.random.default_rng(3).integers(1, 255, (32, 32, 3), np.uint8)
    src = image_ops.Source("cifar10", 3, encoded=False, image_shape=(32, 32, 3))
    for k in range(10):
        out = augment.pad_and_crop(tf.constant(image), _seed(k), 32, src).numpy()
        found = [
            (dy, dx)
            for dy in range(-4, 5)
            for dx in range(-4, 5)
            if np.allclose(
                out[max(0, -dy) : 32 - max(0, dy), max(0, -dx) : 32 - max(0, dx)],
                image[max(0, dy) : 32 - max(0, -dy), max(0, dx) : 32 - max(0, -dx)] / 255,
            )
        ]
        assert len(found) == 1


def test_rotate_shift_noise_blur():
    image = tf.constant(np.random.default_rng(4).random((24, 24, 3), np.float32))
    rotated = augment.rotate(image, _seed(0), 30.0).numpy()
    assert rotated.shape == (24, 24, 3) and not np.allclose(rotated, image.numpy())
    np.testing.assert_allclose(rotated[12, 12], image.numpy()[12, 12], atol=0.35)  # the centre stays
    shifted = augment.shift(image, _seed(1), 0.25).numpy()
    assert (shifted == 0).any() and not np.allclose(shifted, image.numpy())
    noisy = augment.noise(image, _seed(2), 0.05).numpy() - image.numpy()
    assert abs(noisy.std() - 0.05) < 0.005
    blurred = augment.blur(image, _seed(3), 2.0).numpy()
    assert blurred.shape == (24, 24, 3) and blurred.std() < image.numpy().std()
    np.testing.assert_allclose(blurred.mean(), image.numpy().mean(), atol=0.02)


def test_lecun_affine_distortion():
    image = np.zeros((32, 32, 1), np.float32)
    image[8:24, 14:18] = 1.0  # an upright stroke, centred
    none = augment.affine(tf.constant(image), _seed(0), shift=0.0, scale=0.0, squeeze=0.0, shear=0.0)
    np.testing.assert_allclose(none.numpy(), image, atol=1e-5)
    # Shearing alone slants the stroke: its top and bottom move opposite ways, its middle stays.
    sheared = augment.affine(tf.constant(image), _seed(1), shift=0.0, scale=0.0, squeeze=0.0, shear=0.3)
    sheared = sheared.numpy()[..., 0]
    xs = np.arange(32)

    def centre_x(row):
        return (sheared[row] * xs).sum() / sheared[row].sum()

    top, middle, bottom = centre_x(9), centre_x(16), centre_x(22)
    assert abs(middle - 15.5) < 0.6 and (top - middle) * (bottom - middle) < 0 and abs(top - bottom) > 0.5
    # The defaults keep the digit in the field: ink mass within the area factor, centroid near the centre.
    mnist = image_ops.Source("mnist", 1, False, (28, 28, 1))
    prep = augment.train_preprocessor(mnist, 32, "unit", "lecun_distortions")
    digit = tf.constant((image[2:30, 2:30] * 255).astype(np.uint8))  # a 28 x 28 digit, padded to 32
    outs = [prep(digit, _seed(k)).numpy()[..., 0] for k in range(8)]
    for out in outs:
        assert out.shape == (32, 32) and 0.7 < out.sum() / image.sum() < 1.35
        cy, cx = (np.array(np.nonzero(out > 0.5)).mean(1) - 15.5).tolist()
        assert abs(cy) < 2.5 and abs(cx) < 2.5
    assert len({o.tobytes() for o in outs}) == 8


def test_bad_pixels_are_named():
    for bad in (tf.zeros((28, 28), tf.uint8), tf.zeros((8, 8, 3)), tf.zeros((8, 8, 4), tf.uint8)):
        with pytest.raises(ValueError, match="expected a uint8 image of shape \\(height, width, channels\\)"):
            augment.train_preprocessor(RGB, 8, "unit", "cifar")(bad, _seed(0))
