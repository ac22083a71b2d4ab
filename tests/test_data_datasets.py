"""Opening a split (jaxcnn/data/datasets.py): unknown names, empty or missing splits and folders,
unusable images and unprepared datasets are refused in one line that names the fix."""

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
