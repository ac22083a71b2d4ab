"""ResNet family: exact counts and MACs, stride placement, shortcut types, plain nets, stochastic depth."""

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcnn
from jaxcnn.layers import BatchNorm, DropPath
from jaxcnn.models.resnet import ResidualBlock

# torchvision 0.29 (weights=None): parameters and GMACs at 224x224 (PAPERS.md).
TORCHVISION = {
    "resnet18": (11_689_512, 1.814),
    "resnet34": (21_797_672, 3.664),
    "resnet50": (25_557_032, 4.089),
    "resnet101": (44_549_160, 7.801),
    "resnet152": (60_192_808, 11.514),
    "wide_resnet50_2": (68_883_240, 11.398),
    "wide_resnet101_2": (126_886_696, 22.753),
    "resnext50_32x4d": (25_028_904, 4.231),
    "resnext101_32x8d": (88_791_336, 16.414),
    "resnext101_64x4d": (83_455_272, 15.46),
}
# He et al. 2016 Table 1 FLOPs (multiply-adds) of the original bottleneck placement.
PAPER_V1_GMACS = {"resnet50_v1": 3.8, "resnet101_v1": 7.6, "resnet152_v1": 11.3}
# Counts from other implementations: timm / Cadene's SE nets, the torch WRN-28-10, timm's resnext101_32x4d.
OTHER = {
    "se_resnet50": 28_088_024,
    "se_resnext50_32x4d": 27_559_896,
    "wrn28_10": 36_479_194,
    "resnext101_32x4d": 44_177_704,
}


def _init_shapes(model, size, **kwargs):
    x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
    return jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, **kwargs), x)


def _count_and_gmacs(name):
    """Parameters, and conv + dense multiply-adds for one image (our own quick count from shapes)."""
    macs = []

    def count(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if context.method_name == "__call__" and isinstance(context.module, nn.Conv | nn.Dense):
            kernel = context.module.variables["params"]["kernel"]
            macs.append(out.size // out.shape[0] * math.prod(kernel.shape[:-1]))
        return out

    with nn.intercept_methods(count):
        shapes = _init_shapes(jaxcnn.create_model(name), jaxcnn.model_info(name).input_size[0])
    return sum(p.size for p in jax.tree.leaves(shapes["params"])), sum(macs) / 1e9


def _count(name):
    return _count_and_gmacs(name)[0]


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_torchvision_counts_and_macs(name):
    params, gmacs = TORCHVISION[name]
    ours_params, ours_gmacs = _count_and_gmacs(name)
    assert ours_params == params == jaxcnn.model_info(name).num_params
    assert round(ours_gmacs, 3) == pytest.approx(gmacs, abs=1e-3)
    assert jaxcnn.model_info(name).gmacs == gmacs


@pytest.mark.parametrize("name", sorted(PAPER_V1_GMACS))
def test_v1_has_the_v15_count_and_the_papers_macs(name):
    count, ours = _count_and_gmacs(name)
    assert count == TORCHVISION[name.removesuffix("_v1")][0]
    assert ours == pytest.approx(PAPER_V1_GMACS[name], abs=0.06)  # Table 1 prints one decimal
    assert round(ours, 3) == jaxcnn.model_info(name).gmacs  # the registered figure has more digits
    if name == "resnet50_v1":
        assert round(ours, 3) == 3.858  # Keras' ResNet50 (v1 placement)
    assert ours < TORCHVISION[name.removesuffix("_v1")][1]  # the 1x1 runs on the strided map


@pytest.mark.parametrize("name", sorted(OTHER))
def test_counts_of_other_implementations(name):
    assert _count(name) == OTHER[name] == jaxcnn.model_info(name).num_params


def test_se_adds_two_biased_fcs_per_unit():
    se = sum(
        2 * c * c // 16 + c // 16 + c for c, n in ((256, 3), (512, 4), (1024, 6), (2048, 3)) for _ in range(n)
    )
    assert se == 2_530_992
    assert OTHER["se_resnet50"] == TORCHVISION["resnet50"][0] + se
    assert OTHER["se_resnext50_32x4d"] == TORCHVISION["resnext50_32x4d"][0] + se


def test_resnet200_count_and_its_preact_twin():
    unit = 512 * 128 + 9 * 128 * 128 + 128 * 512 + 2 * (128 + 128 + 512)  # one identity stage-2 unit
    assert _count("resnet200") == TORCHVISION["resnet152"][0] + 16 * unit == 64_673_832
    # pre-activation drops each unit's last BN and the projections' BN, adds a BN on each unit's
    # input (but the first's, which is the stem's) and the final BN.
    assert _count("preact_resnet200") == 64_673_832 - 7_680


@pytest.mark.parametrize("name,fewer", [("preact_resnet18", 1_792), ("preact_resnet50", 7_680)])
def test_preact_counts_and_macs(name, fewer):
    # BN moves before the convs: each unit's last BN and the projections' BN go, a BN on each unit's
    # input (the first unit's is the stem's) and the final BN come; the convs are v1.5's.
    count, gmacs = _count_and_gmacs(name)
    v15_count, v15_gmacs = TORCHVISION[name.removeprefix("preact_")]
    assert count == v15_count - fewer == jaxcnn.model_info(name).num_params
    assert round(gmacs, 3) == v15_gmacs == jaxcnn.model_info(name).gmacs


@pytest.mark.parametrize("depth,reported", [(20, 8.75), (32, 7.51), (44, 7.17), (56, 6.97), (110, 6.43)])
def test_cifar_resnets_count_by_formula(depth, reported):
    n = (depth - 2) // 6
    conv = lambda cin, cout: 9 * cin * cout + 2 * cout  # 3x3 conv + BN
    stages = [conv(cin, cout) + conv(cout, cout) + (n - 1) * 2 * conv(cout, cout) for cin, cout in
              ((16, 16), (16, 32), (32, 64))]  # fmt: skip
    expected = conv(3, 16) + sum(stages) + 64 * 10 + 10
    assert _count(f"resnet{depth}") == _count(f"plain{depth}") == expected
    info, plain = jaxcnn.model_info(f"resnet{depth}"), jaxcnn.model_info(f"plain{depth}")
    assert info.num_params == plain.num_params == expected and info.gmacs == plain.gmacs
    assert jaxcnn.model_info(f"resnet{depth}").reported == {"cifar10/test_error": reported}
    paper = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7}[depth]  # Table 6, millions
    assert round(expected / 1e6, 2 if depth < 110 else 1) == paper


def _intermediates(name, size=224):
    shapes = _init_shapes(jaxcnn.create_model(name), size, capture_intermediates=True)
    return shapes["intermediates"]


@pytest.mark.parametrize("name,stride_on", [("resnet50", "conv2"), ("resnet50_v1", "conv1")])
def test_stride_placement_in_layer2_0(name, stride_on):
    block = _intermediates(name)["layer2_0"]
    sizes = {c: block[c]["__call__"][0].shape[1] for c in ("conv1", "conv2", "conv3")}
    assert sizes == {c: 56 if c == "conv1" and stride_on == "conv2" else 28 for c in sizes}
    assert block["downsample_conv"]["__call__"][0].shape[1:] == (28, 28, 512)


def test_grouped_and_wide_3x3():
    cases = {
        "resnext50_32x4d": (3, 3, 4, 128),  # 32 groups of 4 channels
        "resnext101_64x4d": (3, 3, 4, 256),
        "resnext101_32x8d": (3, 3, 8, 256),
        "wide_resnet50_2": (3, 3, 128, 128),  # twice resnet50's 64
    }
    for name, shape in cases.items():
        params = _init_shapes(jaxcnn.create_model(name), 32)["params"]
        assert params["layer1_0"]["conv2"]["kernel"].shape == shape, name


def test_preact_layout():
    params = _init_shapes(jaxcnn.create_model("preact_resnet50"), 32)["params"]
    assert "bn1" not in params["layer1_0"] and "bn1" in params["layer1_1"]  # the stem's BN-ReLU
    assert "downsample_bn" not in params["layer2_0"] and "downsample_conv" in params["layer2_0"]
    assert params["final_bn"]["scale"].shape == (2048,)
    wrn = _init_shapes(jaxcnn.create_model("wrn28_10"), 32)["params"]
    assert wrn["layer1_0"]["downsample_conv"]["kernel"].shape == (1, 1, 16, 160)
    assert wrn["layer3_3"]["conv2"]["kernel"].shape == (3, 3, 640, 640)


def _variables(model, size=32):
    """Variables built from shapes alone (no initialiser to compile): He-scaled normal kernels,
    identity BatchNorm (gamma 1, beta 0, running mean 0, variance 1)."""
    shapes = _init_shapes(model, size)
    rng = np.random.default_rng(0)

    def fill(path, leaf):
        name = path[-1].key
        if name in ("scale", "var"):
            return np.ones(leaf.shape, np.float32)
        if name in ("bias", "mean"):
            return np.zeros(leaf.shape, np.float32)
        std = math.sqrt(2.0 / math.prod(leaf.shape[:-1]))
        return (std * rng.standard_normal(leaf.shape)).astype(np.float32)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def _block(shortcut="zero_pad", preact=False):
    conv = functools.partial(nn.Conv, use_bias=False)
    norm = functools.partial(BatchNorm, use_running_average=True)
    layers = ((3, 32, 2, 1), (3, 32, 1, 1))
    return ResidualBlock(layers, 32, conv, norm, shortcut=shortcut, preact=preact, zero_init_last=True)


def test_option_a_shortcut_has_no_params_and_zero_pads():
    params = _init_shapes(jaxcnn.create_model("resnet20"), 32)["params"]
    assert not any("downsample" in k for block in params.values() for k in block)
    x = jnp.abs(jax.random.normal(jax.random.PRNGKey(0), (2, 8, 8, 16)))
    block = _block("zero_pad")
    variables = block.init(jax.random.PRNGKey(1), x)
    assert set(variables["params"]) == {"conv1", "bn1", "conv2", "bn2"}
    out = block.apply(variables, x)  # the zero-initialised branch leaves relu(shortcut) = shortcut
    np.testing.assert_allclose(out[..., :16], x[:, ::2, ::2, :], rtol=1e-6)
    np.testing.assert_array_equal(out[..., 16:], 0.0)


def test_zeroed_last_gammas_make_resnet_units_identities_but_not_plain_units():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 32, 32, 3))
    res, plain = jaxcnn.create_model("resnet20"), jaxcnn.create_model("plain20")
    variables = _variables(res)
    out, state = res.apply(
        variables, x, features_only=True, capture_intermediates=True, mutable=["intermediates"]
    )
    assert not np.allclose(out, plain.apply(variables, x, features_only=True))

    params = jax.tree_util.tree_map_with_path(
        lambda path, p: p * 0 if path[1].key == "bn2" and path[2].key == "scale" else p, variables["params"]
    )
    zeroed = dict(variables, params=params)
    feats = res.apply(zeroed, x, features_only=True)
    # every unit is now relu(shortcut): the stem's output, subsampled twice and zero-padded to 64
    stem = nn.relu(state["intermediates"]["bn1"]["__call__"][0])
    np.testing.assert_allclose(feats[:, :16], jnp.mean(stem[:, ::4, ::4], axis=(1, 2)), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(feats[:, 16:], 0.0)
    assert np.all(np.asarray(feats[:, :16]) > 0)
    np.testing.assert_array_equal(plain.apply(zeroed, x, features_only=True), 0.0)  # relu(0) all through


def test_zero_init_last_reaches_every_unit_and_zeroes_the_last_bn_or_conv():
    flags = []

    def record(next_fun, args, kwargs, context):
        if isinstance(context.module, ResidualBlock) and context.method_name == "__call__":
            flags.append(context.module.zero_init_last)
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        _init_shapes(jaxcnn.create_model("resnet50", zero_init_last_bn=True), 32)
    assert flags == [True] * 16
    x = jnp.ones((1, 8, 8, 16))
    post = _block("projection").init(jax.random.PRNGKey(0), x)["params"]
    assert np.all(post["bn2"]["scale"] == 0) and np.all(post["bn1"]["scale"] == 1)
    assert np.all(post["downsample_bn"]["scale"] == 1)
    pre = _block("projection", preact=True).init(jax.random.PRNGKey(0), x)["params"]
    assert np.all(pre["conv2"]["kernel"] == 0) and np.any(pre["conv1"]["kernel"] != 0)


def test_stochastic_depth_rates_rise_linearly():
    rates = []

    def record(next_fun, args, kwargs, context):
        if isinstance(context.module, DropPath) and context.method_name == "__call__":
            rates.append(context.module.rate)
        return next_fun(*args, **kwargs)

    with nn.intercept_methods(record):
        _init_shapes(jaxcnn.create_model("resnet20", drop_path_rate=0.5), 32)
    np.testing.assert_allclose(rates, 0.5 * np.arange(1, 10) / 9)  # Huang et al. 2016, linear decay


def test_stochastic_depth_changes_train_outputs_only():
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 32, 32, 3))
    base, dropped = (jaxcnn.create_model("resnet20", drop_path_rate=r) for r in (0.0, 0.5))
    variables = _variables(base)
    np.testing.assert_array_equal(base.apply(variables, x), dropped.apply(variables, x))
    rngs = {"dropout": jax.random.PRNGKey(2)}
    train = lambda m: m.apply(variables, x, train=True, rngs=rngs, mutable=["batch_stats"])[0]
    np.testing.assert_array_equal(train(base), train(base))
    assert not np.allclose(train(base), train(dropped))


def test_wrn_dropout_is_off_by_default_and_an_override():
    assert jaxcnn.create_model("wrn28_10").dropout_rate == 0.0
    assert jaxcnn.create_model("wrn28_10", dropout_rate=0.3).dropout_rate == 0.3


def test_bad_fields_are_rejected():
    with pytest.raises(ValueError, match="shortcut must be one of"):
        _init_shapes(jaxcnn.create_model("resnet20", shortcut="B"), 32)
    with pytest.raises(ValueError, match="basic blocks take groups=1"):
        _init_shapes(jaxcnn.create_model("resnet18", groups=32), 32)
