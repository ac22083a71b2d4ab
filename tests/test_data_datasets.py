"""Opening a split (jaxcnn/data/datasets.py): unknown names, empty or missing splits and folders,
unusable images and unprepared datasets are refused in one line that names the fix."""

import helpers
import numpy as np
import pytest

from jaxcnn.data import input as input_lib
from jaxcnn.data import prepare


def test_unknown_dataset_and_split_are_named():
    with pytest.raises(ValueError, match="unknown dataset 'imagenet21k'.*mnist"):
        input_lib.open_split("imagenet21k", "train")
    with pytest.raises(ValueError, match="no split 'validation'"):
        input_lib.open_split("mnist", "validation")


def test_empty_and_missing_splits_and_folders(tmp_path):
    (tmp_path / "train" / "cat").mkdir(parents=True)
    (tmp_path / "train" / "cat" / "notes.txt").write_text("no images here")
    with pytest.raises(ValueError, match="split 'train' of image folder .* is empty"):
        input_lib.open_split("image_folder", "train", folder=str(tmp_path))
    with pytest.raises(ValueError, match="has no split 'test'"):
        input_lib.open_split("image_folder", "test", folder=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="image folder '/nonexistent' does not exist"):
        input_lib.open_split("image_folder", "train", folder="/nonexistent")
    with pytest.raises(ValueError, match="needs config.dataset.folder"):
        input_lib.open_split("image_folder", "train")


def test_a_dataset_with_unusable_images_is_rejected_when_opened():
    from jaxcnn.data import datasets

    datasets.check_image_spec((28, 28, 1), np.uint8, "dataset 'mnist'")  # fine
    for shape, dtype in (((28, 28), np.uint8), ((32, 32, 4), np.uint8), ((32, 32, 3), np.float32)):
        with pytest.raises(ValueError, match=r"dataset 'x' has images of shape .* expected uint8 \(height"):
            datasets.check_image_spec(shape, dtype, "dataset 'x'")


def test_missing_imagenet_says_where_the_tars_go(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        input_lib.open_split("imagenet2012", "train", str(tmp_path))
    message = str(e.value)
    assert f"{tmp_path}/downloads/manual" in message and "ILSVRC2012_img_train.tar" in message
    assert f"python -m jaxcnn.data.prepare imagenet2012 --manual_dir {tmp_path}/downloads/manual" in message


def test_missing_cifar_offline_names_the_command(tmp_path, monkeypatch):
    monkeypatch.setattr(prepare, "is_online", lambda: False)
    with pytest.raises(FileNotFoundError, match="prepare cifar10 --from DIR .*cifar-10-binary.tar.gz"):
        input_lib.open_split("cifar10", "train", str(tmp_path))


def _folder(tmp_path, **kwargs):
    from jaxcnn.data import fake

    return str(fake.write_image_folder(tmp_path / "folder", splits=(("train", 3), ("test", 2)), **kwargs))


def test_an_empty_class_directory_is_one_line_naming_it(tmp_path):
    root = _folder(tmp_path)
    (tmp_path / "folder" / "train" / "zebra").mkdir()  # today: a class with no examples, silently
    with pytest.raises(ValueError, match=r"class directory .*/train/zebra has no images"):
        input_lib.open_split("image_folder", "train", folder=root)
    with pytest.warns(UserWarning, match="empty class directories .*/train/zebra"):
        input_lib.open_split("image_folder", "train", folder=root, on_bad_example="skip")


def test_an_eval_class_unknown_to_training_is_refused_or_left_out(tmp_path):
    from jaxcnn.data import fake

    root = _folder(tmp_path)
    fake.write_image_folder(root, splits=(("test", 2),), labels=("bird",))  # only in test
    with pytest.raises(ValueError, match=r"split 'test' has 1 class\(es\) that split 'train' lacks: bird"):
        input_lib.open_split("image_folder", "test", folder=root, train_split="train")
    with pytest.warns(UserWarning, match="left out the 2 images of split 'test'"):
        split = input_lib.open_split(
            "image_folder", "test", folder=root, on_bad_example="skip", train_split="train"
        )
    assert split.num_examples == 4 and not any("bird" in f for f in split.files)


def test_an_unreadable_image_is_named_or_skipped_the_same_way_every_time(tmp_path):
    root = _folder(tmp_path)
    bad = tmp_path / "folder" / "train" / "cat" / "cat_001.jpg"
    bad.write_bytes(b"\xff\xd8 not a jpeg")
    config = helpers.data_config("image_folder", batch=6)
    config.dataset.folder = root
    split = input_lib.split_from_config(config, "train")
    with pytest.raises(ValueError, match=f"unreadable image file {bad}"):
        for _ in zip(range(3), input_lib.train_batches(split, config)):
            pass
    config.input.on_bad_example = "skip"
    with pytest.warns(UserWarning, match=f"skipped 1 unreadable image.*: {bad}$"):
        first = input_lib.split_from_config(config, "train")
    assert first.num_examples == 5 and str(bad) not in first.files
    with pytest.warns(UserWarning):
        again = input_lib.split_from_config(config, "train")  # a resume opens the same split
    assert again.files == first.files and again.labels == first.labels
    config.batch_size = 4
    batches = input_lib.train_batches(first, config)
    assert next(batches)["image"].shape[0] == 4 and next(batches)["image"].shape[0] == 4


def test_the_policy_is_checked():
    config = helpers.data_config("mnist")
    config.input.on_bad_example = "ignore"
    with pytest.raises(ValueError, match="config.input.on_bad_example='ignore'; allowed: error, skip"):
        input_lib.check_config(config)


def test_a_recipe_evaluating_validation_reads_a_fake_folders_test_split(image_folder):
    # python -m jaxcnn.data.fake image_folder writes train/test; the ImageNet recipe evaluates "validation".
    with pytest.warns(UserWarning, match="has no split 'validation': reading 'test'"):
        split = input_lib.open_split("image_folder", "validation", folder=image_folder)
    assert split.split == "test" and split.num_examples == 10
    with pytest.raises(ValueError, match="has no split 'holdout'"):
        input_lib.open_split("image_folder", "holdout", folder=image_folder)
