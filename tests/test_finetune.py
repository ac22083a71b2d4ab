"""Fine-tuning (config.init): errors before compiling, a linear probe's frozen backbone bitwise
unchanged, a short fine-tune from converted torchvision weights whose loss falls, rate multipliers."""

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch
import torchvision
from flax import traverse_util
from helpers import ROOT

import jaxcnn
from jaxcnn import build, checkpoint, config_lib, finetune, optim, pretrained, sharding, train

RECIPE = str(ROOT / "configs" / "finetune_image_folder.py")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "CACHE_DIR", tmp_path / "cache")


@pytest.fixture
def resnet18_file(tmp_path):
    """torch.save of a randomly initialised torchvision resnet18 (what a download would give)."""
    torch.manual_seed(0)
    file = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), file)
    return str(file)


def _config(arg, folder, **overrides):
    config = config_lib.load_config(f"{RECIPE}:{arg}")
    config.dataset.folder = folder
    config.init.weights = ""
    config.model.cpu_kernels = "off"
    config.input.image_size = 32
    config.update_from_flattened_dict(overrides)
    return config


@pytest.mark.parametrize(
    "overrides,match",
    [
        ({"init.head": "drop"}, "config.init.head='drop'; allowed: auto, replace, keep"),
        ({"init.weights": "V9"}, "unknown tag 'V9' for 'resnet18'"),
        ({"init.weights": "latest", "init.path": "x.pth"}, "init.weights and init.path"),
        ({"init.path": "missing.pth"}, "config.init.path='missing.pth': no such file"),
        ({"init.workdir": "/nonexistent/run"}, "holds no checkpoint"),
        ({"init.freeze_backbone": True}, "need initial weights"),
        ({"init.backbone_lr_multiplier": -1.0}, "backbone_lr_multiplier must be a number >= 0"),
        ({"init.path": "FILE", "init.freeze_backbone": True, "init.backbone_lr_multiplier": 0.1}, "exclude"),
    ],
)
def test_bad_init_keys_are_one_line_errors_before_compiling(overrides, match, resnet18_file, image_folder):
    overrides = {k: resnet18_file if v == "FILE" else v for k, v in overrides.items()}
    config = _config("resnet18,smoke", image_folder, **overrides)
    with pytest.raises(
        (ValueError, FileNotFoundError), match=match.replace("(", r"\(").replace(")", r"\)")
    ) as err:
        build.check_config(config)
    assert "\n" not in str(err.value)


def test_every_recipe_variant_passes_the_checks(image_folder):
    for arg in ("", "resnet18", "inception_v3", "probe", "inception_v3,probe,smoke"):
        config = config_lib.load_config(f"{RECIPE}:{arg}" if arg else RECIPE)
        build.check_config(config)
        assert config.init.weights == "latest" and config.init.freeze_backbone == ("probe" in arg)


def test_head_is_found_without_per_model_code():
    model = jaxcnn.create_model("inception_v3", num_classes=3, cpu_kernels="off")
    head = finetune.head_paths(model, (75, 75, 3))
    assert head == {
        ("fc", "kernel"),
        ("fc", "bias"),
        ("AuxLogits", "fc", "kernel"),
        ("AuxLogits", "fc", "bias"),
    }


def test_backbone_rate_multiplier_scales_only_the_backbone():
    params = {"fc": {"kernel": jnp.ones((2, 2))}, "conv": {"kernel": jnp.ones((3, 3))}}
    labels = lambda p: {"fc": {"kernel": "head"}, "conv": {"kernel": "backbone"}}  # noqa: E731
    grads = jax.tree.map(jnp.ones_like, params)
    for multiplier, expected in ((0.1, -0.1), (0.0, 0.0)):
        tx = optim.scale_groups(optax.sgd(1.0), labels, {"head": 1.0, "backbone": multiplier})
        updates, _ = tx.update(grads, tx.init(params), params)
        assert float(updates["fc"]["kernel"][0, 0]) == -1.0
        assert float(updates["conv"]["kernel"][0, 0]) == pytest.approx(expected)


def _losses(workdir):
    with open(f"{workdir}/metrics.jsonl") as f:
        rows = [json.loads(line) for line in f]
    return [r["train/loss"] for r in rows if "train/loss" in r]


def _bitwise_backbone(loaded, params, batch_stats):
    before = traverse_util.flatten_dict(loaded)
    after = traverse_util.flatten_dict({"params": params, "batch_stats": batch_stats})
    head = {("params", "fc", "kernel"), ("params", "fc", "bias")}
    assert set(after) == set(before)
    assert any(p[0] == "batch_stats" for p in before)  # BN statistics are compared too
    for path in set(before) - head:
        assert np.array_equal(np.asarray(before[path]), np.asarray(after[path])), "/".join(path)
    assert after[("params", "fc", "kernel")].shape == (512, 2)  # 2 classes: a fresh classifier
    assert not np.array_equal(
        np.asarray(before[("params", "fc", "bias")])[:2], after[("params", "fc", "bias")]
    )


def test_linear_probe_train_steps_keep_the_backbone_bitwise(resnet18_file, image_folder):
    """The build path and the train step alone (no data pipeline): three steps of a probe."""
    config = _config("resnet18,probe,smoke", image_folder, **{"init.path": resnet18_file})
    config.batch_size = 4
    mesh = sharding.create_mesh(1)
    with jax.set_mesh(mesh):
        built = build.build(config, num_classes=2, image_shape=(32, 32, 3), num_train_examples=12, mesh=mesh)
        step = jax.jit(functools.partial(train.train_step, built.model, built.tx, config))
        rng = np.random.default_rng(0)
        state = built.state
        for _ in range(3):
            batch = {
                "image": rng.standard_normal((4, 32, 32, 3)).astype(np.float32),
                "label": rng.integers(0, 2, 4).astype(np.int32),
            }
            state, _ = step(state, sharding.shard_batch(batch, mesh))
    _, loaded = jaxcnn.load_pretrained("resnet18", path=resnet18_file)
    assert int(state.step) == 3
    _bitwise_backbone(loaded, state.params, state.batch_stats)


@pytest.mark.slow
def test_linear_probe_keeps_the_backbone_bitwise(resnet18_file, image_folder, tmp_path):
    config = _config(
        "resnet18,probe,smoke", image_folder, **{"init.path": resnet18_file, "num_train_steps": 6}
    )
    config.log_every_steps = config.eval_every_steps = config.checkpoint_every_steps = 3
    config.batch_size = config.eval_batch_size = 4
    train.train_and_evaluate(config, str(tmp_path / "probe"))
    _, loaded = jaxcnn.load_pretrained("resnet18", path=resnet18_file)
    saved = checkpoint.load_latest(str(tmp_path / "probe"))
    assert int(saved["step"]) == 6
    _bitwise_backbone(loaded, saved["params"], saved["batch_stats"])


@pytest.mark.slow
def test_fine_tune_from_converted_weights_lowers_the_loss(resnet18_file, image_folder, tmp_path):
    config = _config(
        "resnet18,smoke",
        image_folder,
        **{"init.path": resnet18_file, "init.backbone_lr_multiplier": 0.5, "num_train_steps": 24},
    )
    config.log_every_steps, config.eval_every_steps, config.checkpoint_every_steps = 4, 24, 24
    config.batch_size = config.eval_batch_size = 4
    config.input.train_augment = "none"  # the same 12 images each epoch: the loss must fall
    config.optimizer.base_learning_rate = 0.1  # lr 0.0016 at batch 4
    train.train_and_evaluate(config, str(tmp_path / "ft"))
    losses = _losses(tmp_path / "ft")
    assert len(losses) == 6 and losses[-1] < 0.7 * losses[0], losses
