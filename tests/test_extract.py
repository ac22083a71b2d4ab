"""Feature extraction: jaxcnn.features (pooled features, named maps in order) and jaxcnn.extract."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import torchvision

import jaxcnn
from jaxcnn import extract, pretrained


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "CACHE_DIR", tmp_path / "cache")


def _resnet18(size=32):
    model = jaxcnn.create_model("resnet18", num_classes=5, cpu_kernels="off")
    x = jax.random.normal(jax.random.key(1), (2, size, size, 3))
    return model, model.init(jax.random.key(0), x), x


def test_features_pooled_and_named_maps_in_order():
    model, variables, x = _resnet18()
    pooled = jaxcnn.features(model, variables, x)
    again, maps = jaxcnn.features(model, variables, x, stages=True)
    assert pooled.shape == (2, 512) and np.array_equal(pooled, again)
    blocks = [f"layer{i}_{j}" for i in range(1, 5) for j in range(2)]
    assert list(maps) == ["conv1", "bn1", *blocks]  # the order the layers run, not alphabetical
    assert maps["layer4_1"].shape == (2, 1, 1, 512)
    # The pooled features are the global mean of the last stage (its block ends in the ReLU).
    np.testing.assert_allclose(pooled, jnp.mean(maps["layer4_1"], axis=(1, 2)), rtol=1e-6, atol=1e-6)
    ends = extract.stage_ends(maps)
    assert list(ends) == ["bn1", "layer1_1", "layer2_1", "layer3_1", "layer4_1"]
    assert [v.shape[1] for v in ends.values()] == [16, 8, 4, 2, 1]


def test_features_of_a_non_bn_net_with_dense_head():
    model = jaxcnn.create_model("vgg11", num_classes=3, hidden=(16, 16), cpu_kernels="off")
    x = jnp.zeros((1, 32, 32, 3))
    variables = model.init(jax.random.key(0), x)
    pooled, maps = jaxcnn.features(model, variables, x, stages=True)
    assert pooled.shape == (1, 16)  # fc7's output, what fc8 sees
    assert list(maps)[0] == "conv1_1" and list(maps)[-1] == "conv5_2"  # fc6/fc7 are no maps


def _torch_file(tmp_path):
    torch.manual_seed(0)
    file = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), file)
    return file


def test_extract_command_writes_features_and_labels(image_folder, tmp_path, capsys):
    out = tmp_path / "f.npz"
    file = _torch_file(tmp_path)
    args = ["--model=resnet18", f"--path={file}", f"--folder={image_folder}", "--image_size=64"]
    assert extract.main([*args, "--split=test", "--batch_size=4", f"--out={out}"]) == 0
    assert "10 examples x 512 features of split 'test'" in capsys.readouterr().out
    with np.load(out) as data:
        features, labels, names = data["features"], data["labels"], list(data["class_names"])
    assert features.shape == (10, 512) and features.dtype == np.float32 and np.isfinite(features).all()
    assert names == ["cat", "dog"] and sorted(labels.tolist()) == [0] * 5 + [1] * 5
    assert len({row.tobytes() for row in features}) == 10  # one vector per image, no padding rows
    # The same images through jaxcnn.features: the command adds nothing but the data pipeline.
    from jaxcnn.data import input as input_lib

    config = extract._config(
        type("A", (), dict(config=None, workdir=None, folder=image_folder, model="resnet18", batch_size=16))
    )
    config.input.image_size, config.eval.crop_ratio = 64, 224 / 256
    batch = next(input_lib.eval_batches(input_lib.split_from_config(config, "test"), config))
    model, variables = jaxcnn.load_pretrained("resnet18", path=file)
    direct = jaxcnn.features(model, variables, batch["image"][:10])
    np.testing.assert_allclose(direct, features, rtol=1e-4, atol=1e-5)


def test_extract_without_weights_is_one_line(image_folder, tmp_path, capsys):
    rc = extract.main(["--model=resnet18", f"--folder={image_folder}", f"--out={tmp_path / 'f.npz'}"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "--weights=TAG" in err and "--path=FILE" in err
    assert not (tmp_path / "f.npz").exists()


def test_extract_from_a_runs_checkpoint_uses_its_data_and_preprocessing(mnist_split, tmp_path):
    """--workdir: the run's model, latest weights, dataset and normalisation (here MNIST's)."""
    from helpers import mnist_config

    from jaxcnn import train

    config = mnist_config("mnist_convnet", num_train_steps=10)
    config.eval_every_steps = config.checkpoint_every_steps = config.log_every_steps = 10
    config.dataset.eval_split = "test[:20]"
    train.train_and_evaluate(config, str(tmp_path / "run"))
    out = tmp_path / "mnist.npz"
    assert extract.main([f"--workdir={tmp_path / 'run'}", "--split=test[:40]", f"--out={out}"]) == 0
    with np.load(out) as data:
        features, labels = data["features"], data["labels"]
    assert features.shape == (40, 1000) and labels.shape == (40,)  # fc 1000: what the last fc sees
    assert labels.tolist() == [int(y) for y in np.asarray(_mnist_labels(40))]


def _mnist_labels(n):
    import tensorflow_datasets as tfds

    ds = tfds.load("mnist", split=f"test[:{n}]", shuffle_files=False)
    return [int(ex["label"]) for ex in tfds.as_numpy(ds)]
