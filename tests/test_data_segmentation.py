"""The segmentation input pipeline (jaxcnn/data/segmentation.py, seg_augment.py): the folder layout and
its bad-data errors, exact resume, process slices, tiles, image/mask consistency of the augmentation,
oxford_iiit_pet's trimaps."""

import ml_collections
import numpy as np
import pytest
from PIL import Image

from jaxcnn.data import seg_augment, segmentation

CLASSES = ("background", "disc", "bar")


def make_example(rng, h, w):
    """A grey image whose pixels say their class (class k -> 60 k + noise < 30), its mask, instances."""
    mask = np.zeros((h, w), np.uint8)
    inst = np.zeros((h, w), np.uint8)
    yy, xx = np.mgrid[:h, :w]
    cy, cx = rng.integers(4, h - 4), rng.integers(4, w - 4)
    disc = (yy - cy) ** 2 + (xx - cx) ** 2 <= 9
    mask[disc], inst[disc] = 1, 1
    col = int(rng.integers(0, w - 3))
    bar = (xx >= col) & (xx < col + 2) & ~disc
    mask[bar], inst[bar] = 2, 2
    image = (mask * 60 + rng.integers(0, 30, (h, w))).astype(np.uint8)
    return image, mask, inst


def write_folder(root, splits=(("train", 7, (20, 24)), ("test", 3, (18, 18))), classes=CLASSES):
    rng = np.random.default_rng(1)
    root.mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("\n".join(classes) + "\n")
    for split, count, (h, w) in splits:
        for sub in ("images", "masks", "instances"):
            (root / split / sub).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            for sub, array in zip(("images", "masks", "instances"), make_example(rng, h, w), strict=True):
                Image.fromarray(array).save(root / split / sub / f"ex{i:02d}.png")
    return root


def config_for(root, *, size=16, batch=4, **input_keys):
    return ml_collections.ConfigDict(
        {
            "dataset": {"name": "segmentation_folder", "folder": str(root), "data_dir": ""},
            "input": {"image_size": size, "normalize": "unit", **input_keys},
            "loss": {"w0": 10.0, "sigma": 5.0, "class_balance": "inverse"},
            "batch_size": batch,
            "seed": 3,
        }
    )


AUGMENT = {"elastic_sigma": 3.0, "elastic_grid": 3, "rotate_degrees": 15.0, "shift_pixels": 2.0, "flip": "hv"}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("segfolder") / "root")


def test_open_folder_reads_every_example_in_order(folder):
    split = segmentation.open_split(config_for(folder), "train")
    assert (split.num_examples, split.num_classes, split.channels) == (7, 3, 1)
    assert split.class_names == CLASSES
    assert [f.rsplit("/", 1)[-1] for f in split.files] == [f"ex{i:02d}.png" for i in range(7)]
    stored = np.asarray(Image.open(folder / "train" / "masks" / "ex03.png"))
    np.testing.assert_array_equal(split.masks[3], stored)
    assert split.images[3].shape == (20, 24, 1) and split.images[3].dtype == np.uint8
    assert split.masks[3].dtype == np.int32 and split.instances[3].max() == 2


def batches(split, config, start, count, **kw):
    it = segmentation.train_batches(split, config, start_step=start, **kw)
    return [next(it) for _ in range(count)]


def test_resume_yields_exactly_the_same_batches(folder):
    config = config_for(folder, **AUGMENT)
    split = segmentation.open_split(config, "train")  # 7 examples, batch 4: one step an epoch
    from_zero = batches(split, config, 0, 5)
    resumed = batches(split, config, 3, 2)
    for a, b in zip(from_zero[3:], resumed, strict=True):
        for key in ("image", "label", "weight"):
            np.testing.assert_array_equal(a[key], b[key])
    # Epochs differ (another permutation and other augmentations).
    assert not np.array_equal(from_zero[0]["image"], from_zero[1]["image"])
    assert from_zero[0]["image"].shape == (4, 16, 16, 1) and from_zero[0]["image"].dtype == np.float32
    assert from_zero[0]["label"].dtype == np.int32 and from_zero[0]["weight"].dtype == np.float32


def test_processes_take_contiguous_slices_of_the_global_batch(folder):
    config = config_for(folder, **AUGMENT)
    split = segmentation.open_split(config, "train")
    whole = batches(split, config, 1, 2)
    parts = [batches(split, config, 1, 2, process_index=p, process_count=2) for p in range(2)]
    for step in range(2):
        for key in ("image", "label", "weight"):
            joined = np.concatenate([parts[0][step][key], parts[1][step][key]])
            np.testing.assert_array_equal(joined, whole[step][key])


def test_small_images_are_centred_and_mirror_padded_with_weight_zero(folder):
    config = config_for(folder, size=26, batch=3)
    config.loss.w0, config.loss.class_balance = 0.0, "none"
    split = segmentation.open_split(config, "test")  # 18 x 18 images in a 26 x 26 tile
    batch = batches(split, config, 0, 1)[0]
    order = np.random.default_rng([3, 0]).permutation(3)
    for b in range(3):
        index = order[b]
        np.testing.assert_array_equal(batch["label"][b, 4:22, 4:22], split.masks[index])
        np.testing.assert_allclose(batch["image"][b, 4:22, 4:22, 0], split.images[index][..., 0] / 255.0)
        assert np.all(batch["weight"][b, 4:22, 4:22] == 1.0)
        assert batch["weight"][b].sum() == 18 * 18  # the mirrored border weighs nothing
        # Mirror padding: the row above the image is the image's second row.
        np.testing.assert_array_equal(batch["label"][b, 3, 4:22], split.masks[index][1])


def test_large_images_give_a_random_tile_of_the_image(folder):
    config = config_for(folder, size=16, batch=4)
    split = segmentation.open_split(config, "train")  # 20 x 24 images
    batch = batches(split, config, 0, 1)[0]
    order = np.random.default_rng([3, 0]).permutation(7)
    for b in range(4):
        mask = split.masks[order[b]]
        windows = [
            (y, x)
            for y in range(5)
            for x in range(9)
            if np.array_equal(mask[y : y + 16, x : x + 16], batch["label"][b])
        ]
        assert windows, "the tile is not a window of its image"
        assert np.all(batch["weight"][b] > 0)


def test_warp_moves_image_and_mask_together():
    rng = np.random.default_rng(0)
    _, mask, _ = make_example(rng, 40, 40)
    params = seg_augment.Augment(elastic_sigma=6.0, rotate_degrees=30.0, shift_pixels=4.0, flip="hv")
    coords = seg_augment.source_coordinates((40, 40), (40, 40), (0, 0), params, np.random.default_rng(5))
    label = seg_augment.warp_labels(mask, coords)
    # An image equal to the mask, warped the image's way with nearest neighbour: the same pixels.
    same = seg_augment.warp_image(mask[..., None], coords, order=0)[..., 0]
    np.testing.assert_array_equal(same, label)
    # With linear interpolation, wherever the image is exactly a class value the label is that class.
    linear = seg_augment.warp_image((mask * 100)[..., None], coords, order=1)[..., 0]
    exact = np.isin(linear, (0.0, 100.0, 200.0))
    assert exact.mean() > 0.7
    np.testing.assert_array_equal(label[exact], (linear[exact] / 100).astype(np.int32))
    assert not np.array_equal(label, mask)  # it did deform


def test_elastic_field_interpolates_the_coarse_grid():
    field = seg_augment.elastic_field((41, 61), 10.0, 3, np.random.default_rng(7))
    coarse = np.random.default_rng(7).normal(0.0, 10.0, size=(2, 3, 3))
    # The grid spans the image: its points are the corners, the edges' midpoints and the centre.
    for (i, j), (y, x) in {(0, 0): (0, 0), (1, 1): (20, 30), (2, 2): (40, 60), (0, 2): (0, 60)}.items():
        np.testing.assert_allclose(field[:, y, x], coarse[:, i, j], atol=1e-6)
    assert np.abs(np.diff(field, axis=1)).max() < 3.0  # smooth: 20 pixels between grid points


def test_eval_examples_are_whole_unaugmented_images_in_order(folder):
    config = config_for(folder, **AUGMENT)
    config.input.normalize = "standardize"
    split = segmentation.open_split(config, "test")
    examples = list(segmentation.eval_examples(split, config))
    assert len(examples) == 3
    mean, std = np.mean(segmentation.MEAN_STD["segmentation_folder"], axis=1)  # grey: channel average
    for (image, mask), stored, stored_mask in zip(examples, split.images, split.masks, strict=True):
        np.testing.assert_allclose(image, (stored / 255.0 - mean) / std, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(mask, stored_mask)
        assert image.dtype == np.float32 and image.shape == (18, 18, 1)


def one_line(excinfo, *needles):
    message = str(excinfo.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message


def test_missing_mask_is_named(tmp_path):
    root = write_folder(tmp_path / "r", splits=(("train", 3, (10, 10)),))
    (root / "train" / "masks" / "ex01.png").unlink()
    with pytest.raises(FileNotFoundError) as e:
        segmentation.open_split(config_for(root), "train")
    one_line(e, "no mask for image", "ex01.png", str(root / "train" / "masks" / "ex01"))


def test_size_mismatch_is_named(tmp_path):
    root = write_folder(tmp_path / "r", splits=(("train", 3, (10, 10)),))
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(root / "train" / "masks" / "ex02.png")
    with pytest.raises(ValueError) as e:
        segmentation.open_split(config_for(root), "train")
    one_line(e, str(root / "train" / "masks" / "ex02.png"), "12x10", "10x10")


def test_class_id_out_of_range_is_named(tmp_path):
    root = write_folder(tmp_path / "r", splits=(("train", 3, (10, 10)),))
    Image.fromarray(np.full((10, 10), 255, np.uint8)).save(root / "train" / "masks" / "ex00.png")
    with pytest.raises(ValueError) as e:
        segmentation.open_split(config_for(root), "train")
    one_line(e, str(root / "train" / "masks" / "ex00.png"), "class id 255", "0..2")


def test_unreadable_png_is_named(tmp_path):
    root = write_folder(tmp_path / "r", splits=(("train", 3, (10, 10)),))
    (root / "train" / "images" / "ex01.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(ValueError) as e:
        segmentation.open_split(config_for(root), "train")
    one_line(e, "unreadable image file", str(root / "train" / "images" / "ex01.png"))


def test_missing_classes_and_split_are_explained(tmp_path):
    root = write_folder(tmp_path / "r", splits=(("train", 2, (10, 10)),))
    with pytest.raises(FileNotFoundError) as e:
        segmentation.open_split(config_for(root), "validation")
    one_line(e, "validation", "splits with images: ['train']")
    (root / "classes.txt").unlink()
    with pytest.raises(FileNotFoundError) as e:
        segmentation.open_split(config_for(root), "train")
    one_line(e, "classes.txt is missing", "config.dataset.num_classes")
    config = config_for(root)
    config.dataset.num_classes = 3
    assert segmentation.open_split(config, "train").class_names == ("0", "1", "2")


def test_missing_mnist_canvas_names_the_prepare_command(tmp_path):
    config = config_for(tmp_path)
    config.dataset.name, config.dataset.folder, config.dataset.data_dir = "mnist_canvas", "", str(tmp_path)
    with pytest.raises(FileNotFoundError) as e:
        segmentation.open_split(config, "train")
    one_line(e, "python -m jaxcnn.data.prepare mnist_canvas", str(tmp_path / "mnist_canvas"))


def test_pet_trimaps_map_to_background_pet_border():
    trimap = np.array([[[1], [2]], [[3], [2]]], np.uint8)  # TFDS: 1 pet, 2 background, 3 border
    np.testing.assert_array_equal(segmentation.trimap_to_classes(trimap), [[1, 0], [2, 0]])
    records = [{"image": np.zeros((2, 2, 3), np.uint8), "segmentation_mask": trimap, "label": 4}]
    split = segmentation.pet_split(records, "train")
    assert (split.num_classes, split.channels, split.class_names) == (3, 3, ("background", "pet", "border"))
    assert split.instances is None
    with pytest.raises(ValueError, match="trimap holds value 0; allowed 1"):
        segmentation.trimap_to_classes(np.zeros((2, 2, 1), np.uint8))


def test_missing_pets_names_how_to_prepare(tmp_path):
    config = config_for(tmp_path)
    config.dataset.name, config.dataset.data_dir = "oxford_iiit_pet", str(tmp_path)
    with pytest.raises(FileNotFoundError) as e:
        segmentation.open_split(config, "train")
    one_line(e, "python -m jaxcnn.data.prepare oxford_iiit_pet", str(tmp_path))


def test_config_errors(folder):
    config = config_for(folder, flip="diagonal")
    with pytest.raises(ValueError, match="config.input.flip='diagonal'"):
        segmentation.check_config(config)
    config = config_for(folder, batch=3)
    with pytest.raises(ValueError, match="batch_size=3 must be a positive multiple of the 2 processes"):
        segmentation.check_config(config, process_count=2)
    config = config_for(folder)
    config.dataset.name = "mnist"
    with pytest.raises(ValueError, match="not a segmentation dataset"):
        segmentation.check_config(config)
