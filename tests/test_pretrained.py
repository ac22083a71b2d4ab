"""Pretrained weights: the table, the offline and mismatch errors, and torchvision equality.

A randomly initialised torchvision model, its BatchNorm running statistics randomised (so they
matter), saved with torch.save and loaded through load_pretrained(path=...), gives the same logits
as torch on the same random batch: eval mode at the native size, and train mode (BatchNorm on batch
statistics, dropout off) with the same updated running statistics.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
import torch
import torchvision

import jaxcnn
from jaxcnn import pretrained

TOL = 1e-4
FAST = ["resnet18", "mobilenet_v2", "alexnet"]
SLOW = [
    "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "googlenet_tv",
    "inception_v3", "resnet34", "resnet50", "resnet101", "resnet152", "wide_resnet50_2", "wide_resnet101_2",
    "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "densenet121", "densenet161", "densenet169",
    "densenet201",
]  # fmt: skip


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "CACHE_DIR", tmp_path / "cache")


def _torch_model(name: str, seed: int = 0):
    torch.manual_seed(seed)
    kwargs = {}
    if name == "googlenet_tv":
        name, kwargs = "googlenet", dict(aux_logits=True, transform_input=False, init_weights=False)
    elif name == "inception_v3":
        kwargs = dict(aux_logits=True, transform_input=False, init_weights=False)
    model = torchvision.models.get_model(name, weights=None, **kwargs)
    # torch's default init for GoogLeNet and Inception v3 (init_weights=False): their own std-0.1
    # truncated normal gives logits near 1e3, where float32 rounding alone exceeds 1e-4.
    # Randomised statistics that keep activations O(1) (random ones compound over 50+ layers into
    # logits of 1e3, where float32 rounding alone exceeds 1e-4): each BN's running statistics are
    # set to its batch statistics on a calibration batch, then perturbed per channel.
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    gen = torch.Generator().manual_seed(seed + 1)
    if bns:
        for m in bns:
            m.momentum = 1.0
        size = jaxcnn.model_info(name if name != "googlenet" else "googlenet_tv").input_size
        with torch.no_grad():
            model.train()(torch.randn(4, size[2], size[0], size[1], generator=gen))
        with torch.no_grad():
            for m in bns:
                m.momentum = 0.1
                std = m.running_var.sqrt()
                m.running_mean.add_(0.2 * std * torch.randn(m.num_features, generator=gen))
                m.running_var.mul_(torch.rand(m.num_features, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
            # A residual branch's last BN at scale ~1 adds a unit-variance signal per block: after the
            # 33-50 blocks of ResNet-101/152 the logits reach 1e2-1e3, where float32 rounding alone
            # exceeds 1e-4 (a relative 1e-6). Trained ResNets keep these scales small (Goyal et al.
            # 2017 start them at 0); a tenth keeps the logits O(10), the statistics still random.
            for block in model.modules():
                last = {"Bottleneck": "bn3", "BasicBlock": "bn2"}.get(type(block).__name__)
                if last:
                    getattr(block, last).weight.mul_(0.1)
    return model


def _no_dropout(model):
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    return model


def _compare(name, tmp_path, batch=2, train=True, cpu_kernels="off", side=None, **overrides):
    """Max abs logit difference in eval mode and (if the net has BatchNorm and `train`) train mode,
    on inputs of the native size or `side` x `side`."""
    tm = _torch_model(name)
    file = tmp_path / f"{name}.pth"
    torch.save(tm.state_dict(), file)
    model, variables = jaxcnn.load_pretrained(name, path=file, cpu_kernels=cpu_kernels, **overrides)
    size = jaxcnn.model_info(name).input_size
    if side:
        size = (side, side, size[2])
    x = np.random.default_rng(0).standard_normal((batch, size[2], size[0], size[1])).astype(np.float32)
    xj = x.transpose(0, 2, 3, 1)
    tm.eval()
    with torch.no_grad():
        expected = tm(torch.from_numpy(x)).numpy()
    got = np.asarray(jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, xj))
    diffs = {"eval": float(np.max(np.abs(got - expected)))}
    if train and "batch_stats" in variables:
        _no_dropout(tm).train()
        with torch.no_grad():
            out = tm(torch.from_numpy(x))
        out = out[0] if isinstance(out, tuple) else out
        fields = {f.name for f in dataclasses.fields(model)}
        plain = model.clone(**{f: 0.0 for f in fields if f.endswith("dropout_rate")})
        y, updates = plain.apply(
            variables, xj, train=True, mutable=["batch_stats"], rngs={"dropout": jax.random.key(0)}
        )
        y = y[0] if isinstance(y, tuple) else y
        diffs["train"] = float(np.max(np.abs(np.asarray(y) - out.numpy())))
        running = {
            n: m.running_var.numpy() for n, m in tm.named_modules() if isinstance(m, torch.nn.BatchNorm2d)
        }
        last = list(running)[-1]  # the smallest map, where n / (n - 1) shows
        state = tm.state_dict()
        torch_modules = list(dict.fromkeys(k.rsplit(".", 1)[0] for k in state))
        convs = {k.rsplit(".", 1)[0] for k, v in state.items() if v.ndim == 4}
        jax_modules = list(dict.fromkeys("/".join(k[1:-1]) for k in _flat_keys(variables)))
        mapped = pretrained._module_paths(pretrained._family(name), torch_modules, jax_modules, convs)[last]
        node = updates["batch_stats"]
        for part in mapped.split("/"):
            node = node[part]
        first = last
        diffs["running_var"] = float(np.max(np.abs(np.asarray(node["var"]) - running[first])))
    return diffs


def _flat_keys(tree):
    from flax import traverse_util

    return list(traverse_util.flatten_dict(tree))


def _check(name, tmp_path, record_property, **kwargs):
    diffs = _compare(name, tmp_path, **kwargs)
    # Recorded for the closing note: `pytest -s` prints them, --junitxml keeps them as properties.
    print(f"max abs diff {name} {kwargs or ''}: {diffs}")
    for key, value in diffs.items():
        record_property(f"max_abs_diff_{key}", value)
        assert value <= TOL, f"{name} {key} max abs diff {value}"


@pytest.mark.parametrize("name", FAST)
def test_equal_to_torchvision(name, tmp_path, record_property):
    _check(name, tmp_path, record_property)


def test_cpu_kernels_equal_to_torchvision(tmp_path, record_property):
    """cpu_ops' BatchNorm (fused backward) updates the running variance as torch too."""
    _check("resnet18", tmp_path, record_property, cpu_kernels="on")


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_equal_to_torchvision_slow(name, tmp_path, record_property):
    _check(name, tmp_path, record_property, batch=2)


def test_adaptive_classifier_pool_equals_torchvision_above_native_size(tmp_path, record_property):
    """At 256 (> 224) torchvision pools alexnet's 7x7 map to 6x6; classifier_pool="adaptive" does too,
    while the default dense evaluation slides fc6 and gives other logits from the same weights."""
    _check("alexnet", tmp_path, record_property, side=256, classifier_pool="adaptive")
    dense = _compare("alexnet", tmp_path, side=256, train=False)
    assert dense["eval"] > TOL  # the default (dense) would fail the equality above


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vgg11_bn", "googlenet_tv", "inception_v3"])
def test_adaptive_classifier_pool_equals_torchvision_slow(name, tmp_path, record_property):
    side = round(1.25 * jaxcnn.model_info(name).input_size[0])
    _check(name, tmp_path, record_property, side=side, classifier_pool="adaptive")


def test_unknown_classifier_pool_is_one_line():
    model = jaxcnn.create_model("alexnet", classifier_pool="sliding", cpu_kernels="off")
    with pytest.raises(ValueError, match="classifier_pool='sliding'; allowed: dense, adaptive"):
        jax.eval_shape(model.init, jax.random.key(0), jax.ShapeDtypeStruct((1, 63, 63, 3), np.float32))


def test_table_names_the_classifier_pool_that_matches_torchvision():
    pools = {r["model"]: r["classifier_pool"] for r in jaxcnn.list_pretrained()}
    assert pools["alexnet"] == pools["vgg16"] == pools["googlenet_tv"] == pools["inception_v3"] == "adaptive"
    assert pools["resnet50"] == pools["densenet121"] == pools["mobilenet_v2"] == "global"


def test_table_matches_installed_torchvision():
    rows = jaxcnn.list_pretrained()
    assert {r["model"] for r in rows} == set(FAST + SLOW)
    for r in rows:
        tv_name = "googlenet" if r["model"] == "googlenet_tv" else r["model"]
        weights = torchvision.models.get_model_weights(tv_name)[r["tag"]]
        metrics = weights.meta["_metrics"]["ImageNet-1K"]
        assert (r["url"], r["acc1"], r["acc5"]) == (weights.url, metrics["acc@1"], metrics["acc@5"])
        assert weights.url.rsplit("-", 1)[1].startswith(r["sha256"]) and len(r["sha256"]) >= 8
        assert r["crop"] == weights.transforms.keywords["crop_size"]
        assert r["resize"] == weights.transforms.keywords.get("resize_size", 256)


def test_transform_input_is_folded_into_mean_std():
    """torchvision's transform_input applied to ImageNet-normalised x equals (x01 - 0.5) / 0.5."""
    (row,) = jaxcnn.list_pretrained("googlenet_tv")
    model = torchvision.models.googlenet(
        weights=None, aux_logits=False, transform_input=True, init_weights=False
    )
    pixels = torch.rand(1, 3, 4, 4)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    transformed = model._transform_input((pixels - mean[:, None, None]) / std[:, None, None])
    ours = (pixels - torch.tensor(row["mean"])[:, None, None]) / torch.tensor(row["std"])[:, None, None]
    assert torch.allclose(transformed, ours, atol=1e-6)


def test_offline_without_path_is_one_line_naming_url(monkeypatch):
    def offline(*args, **kwargs):
        raise pretrained.urllib.error.URLError("offline")

    monkeypatch.setattr(pretrained.urllib.request, "urlopen", offline)
    start = time.monotonic()
    with pytest.raises(FileNotFoundError) as err:
        jaxcnn.load_pretrained("resnet18")
    message = str(err.value)
    assert time.monotonic() - start < 30
    assert "\n" not in message and "resnet18-f37072fd.pth" in message and "path=" in message


def test_checksum_mismatch_is_one_line_and_caches_nothing(tmp_path, monkeypatch):
    """A download whose SHA-256 is not the table's: the file, both digests, one line; nothing kept."""
    source = tmp_path / "other.pth"
    source.write_bytes(b"not the published weights")

    def copy_local(url, timeout):
        return open(source, "rb")  # urlopen's response is a readable file object too

    monkeypatch.setattr(pretrained.urllib.request, "urlopen", copy_local)
    with pytest.raises(ValueError) as err:
        jaxcnn.load_pretrained("resnet18")
    message, actual = str(err.value), pretrained.sha256_file(source)
    assert "\n" not in message and "resnet18-f37072fd.pth" in message
    assert "f37072fd" in message and actual in message
    assert not any(pretrained.CACHE_DIR.iterdir())  # no partial file, no converted tree


def test_unknown_tag_and_model():
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        jaxcnn.load_pretrained("resnet18", "V9")
    with pytest.raises(ValueError, match="no pretrained weights for model 'resnet20'"):
        jaxcnn.load_pretrained("resnet20")


def test_mismatching_file_names_first_tensor(tmp_path):
    state = _torch_model("resnet18").state_dict()
    state["layer2.0.conv1.weight"] = torch.zeros(128, 64, 5, 5)
    file = tmp_path / "bad.pth"
    torch.save(state, file)
    with pytest.raises(ValueError, match=r"layer2\.0\.conv1\.weight") as err:
        jaxcnn.load_pretrained("resnet18", path=file)
    assert "\n" not in str(err.value)
    torch.save(_torch_model("resnet34").state_dict(), file)  # another depth: extra blocks
    with pytest.raises(ValueError, match=r"layer1\.2\."):
        jaxcnn.load_pretrained("resnet18", path=file)


@pytest.mark.slow
def test_converted_tree_is_cached_and_loads_without_torch(tmp_path, monkeypatch):
    file = tmp_path / "m.pth"
    torch.save(_torch_model("mobilenet_v2").state_dict(), file)
    _, first = jaxcnn.load_pretrained("mobilenet_v2", path=file)
    assert list(pretrained.CACHE_DIR.glob("mobilenet_v2-*.npz"))

    def no_torch(path):
        raise AssertionError("torch read again")

    monkeypatch.setattr(pretrained, "_read_state_dict", no_torch)
    _, second = jaxcnn.load_pretrained("mobilenet_v2", path=file)
    assert jax.tree.all(jax.tree.map(lambda a, b: bool((a == b).all()), first, second))


def test_predict_prints_top5_and_names_unreadable_file(tmp_path, capsys):
    from PIL import Image

    from jaxcnn import predict

    file = tmp_path / "m.pth"
    torch.save(_torch_model("mobilenet_v2").state_dict(), file)
    image = tmp_path / "cat.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(image)
    broken = tmp_path / "notes.jpg"
    broken.write_text("not an image")
    rc = predict.main(["--model=mobilenet_v2", f"--path={file}", str(broken), str(image)])
    out, err = capsys.readouterr()
    assert rc == 1
    assert err.strip() == f"{broken}: cannot read as an image (UnidentifiedImageError)"
    lines = out.strip().splitlines()
    assert lines[0] == str(image) and len(lines) == 6
    probs = [float(line.split()[0]) for line in lines[1:]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001
    names = predict.imagenet_labels()  # torchvision's bundled categories (installed with the tests)
    assert len(names) == 1000 and all(line.split(maxsplit=1)[1] in names for line in lines[1:])


def test_input_adapter_is_transform_input():
    (row,) = jaxcnn.list_pretrained("inception_v3")
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    x = np.random.default_rng(0).standard_normal((1, 2, 2, 3)).astype(np.float32)
    adapt = pretrained.input_adapter(row, mean, std)
    np.testing.assert_allclose(adapt(x), (x * std + mean - 0.5) / 0.5, rtol=1e-5, atol=1e-6)
    assert pretrained.input_adapter(jaxcnn.list_pretrained("resnet18")[0], mean, std) is None


def test_evaluate_command_scores_pretrained_weights(fake_imagenet, tmp_path, root, cli_env):
    """`python -m jaxcnn.evaluate --weights=TAG --path=FILE`: a converted random file on a fake ImageNet."""
    data_dir, _ = fake_imagenet
    file = tmp_path / "resnet18.pth"
    torch.save(_torch_model("resnet18").state_dict(), file)
    args = [
        "--config=configs/resnet_imagenet.py:smoke", "--config.model.name=resnet18",
        f"--config.dataset.data_dir={data_dir}", "--config.eval_batch_size=4", "--weights=IMAGENET1K_V1",
        f"--path={file}", "--protocols=center,ten_crop",
    ]  # fmt: skip
    env = dict(cli_env(1), JAXCNN_CACHE=str(tmp_path / "cache"))
    proc = subprocess.run(
        [sys.executable, "-m", "jaxcnn.evaluate", *args], cwd=root, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    for line, protocol in zip(lines[-2:], ("center", "ten_crop")):
        assert line.startswith(f"resnet18 IMAGENET1K_V1: {protocol} top-1 error ") and "(6 examples)" in line


def test_readme_weights_table_is_the_generated_one(root):
    """README's table is weights_markdown()'s output: regenerate and paste it when the table changes."""
    readme = (root / "README.md").read_text()
    start = readme.index("<!-- weights table:")
    table = readme[readme.index("\n", start) + 1 : readme.index("<!-- end of weights table -->")].strip()
    assert table == pretrained.weights_markdown()
    assert len(table.splitlines()) == 2 + len(jaxcnn.list_pretrained())
