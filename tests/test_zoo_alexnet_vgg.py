"""AlexNet (2012, torchvision), ZFNet and VGG: exact counts, feature maps, grouping, LRN, 1x1 convs."""

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcnn
from jaxcnn.layers import LocalResponseNorm, adaptive_avg_pool

# torchvision 0.29's (params, GMACs at 224x224), from its weights' meta (vgg13: 11.308, not PAPERS.md's
# 11.309). The other members are checked against the papers' layer arithmetic below.
TORCHVISION = {
    "alexnet": (61_100_840, 0.714),
    "vgg11": (132_863_336, 7.609),
    "vgg13": (133_047_848, 11.308),
    "vgg16": (138_357_544, 15.470),
    "vgg19": (143_667_240, 19.632),
    "vgg11_bn": (132_868_840, 7.609),
    "vgg13_bn": (133_053_736, 11.308),
    "vgg16_bn": (138_365_992, 15.470),
    "vgg19_bn": (143_678_248, 19.632),
}


def _trace(name, size=None):
    """Param shapes, every module's output shape and the conv + dense MACs, without allocating."""
    info, model = jaxcnn.model_info(name), jaxcnn.create_model(name)
    size = size or info.input_size[0]
    macs = [0]

    def count(next_fun, args, kwargs, context):
        y = next_fun(*args, **kwargs)
        m, x = context.module, args[0] if args else None
        if context.method_name == "__call__" and isinstance(m, nn.Conv):
            macs[0] += math.prod(y.shape) * math.prod(m.kernel_size) * x.shape[-1] // m.feature_group_count
        elif context.method_name == "__call__" and isinstance(m, nn.Dense):
            macs[0] += math.prod(y.shape) * x.shape[-1]
        return y

    x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
    with nn.intercept_methods(count):
        variables = jax.eval_shape(
            lambda x: model.init(jax.random.PRNGKey(0), x, capture_intermediates=True), x
        )
    inter = variables["intermediates"]
    maps = {k: v["__call__"][0].shape[1:] for k, v in inter.items() if k != "__call__"}
    return variables["params"], maps, macs[0]


def _abstract_run(name, size=None):
    return _trace(name, size)[:2]


def _counts(name):
    shapes, _, macs = _trace(name)
    return sum(p.size for p in jax.tree.leaves(shapes)), macs


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_torchvision_counts_are_the_registered_facts(name):
    params, gmacs = TORCHVISION[name]
    info = jaxcnn.model_info(name)
    assert (info.num_params, info.gmacs) == (params, gmacs)
    count, macs = _counts(name)
    assert count == params and round(macs / 1e9, 3) == gmacs


def test_zfnet_counts_are_fig_3s_layer_arithmetic():
    # (kernel, in maps, out maps, output side) of conv1-5 (Fig. 3), then fc6-8 on the 6x6x256 pool.
    convs = ((7, 3, 96, 110), (5, 96, 256, 26), (3, 256, 384, 13), (3, 384, 384, 13), (3, 384, 256, 13))
    fcs = ((6 * 6 * 256, 4096), (4096, 4096), (4096, 1000))
    params = sum(k * k * cin * cout + cout for k, cin, cout, _ in convs) + sum(i * o + o for i, o in fcs)
    macs = sum(side * side * cout * k * k * cin for k, cin, cout, side in convs) + sum(i * o for i, o in fcs)
    info = jaxcnn.model_info("zfnet")
    assert _counts("zfnet") == (params, macs)
    assert info.num_params == params and round(macs / 1e9, 3) == info.gmacs


def test_vgg_c_is_d_less_the_3x3_to_1x1_savings_and_a_lrn_is_a():
    # C's conv3_3, conv4_3 and conv5_3 are 1x1: each saves 8 of its 9 weights per filter input.
    saved = [(256, 56), (512, 28), (512, 14)]  # (maps in and out, output side)
    params = TORCHVISION["vgg16"][0] - sum(8 * c * c for c, _ in saved)
    macs = _counts("vgg16")[1] - sum(8 * c * c * side * side for c, side in saved)
    info = jaxcnn.model_info("vgg16_c")
    assert _counts("vgg16_c") == (params, macs) and info.num_params == params
    assert round(macs / 1e9, 3) == info.gmacs
    # The LRN layer of A-LRN (Sec. 2.1) has no parameters and no multiply-adds.
    assert _counts("vgg11_lrn") == _counts("vgg11")
    lrn, a = jaxcnn.model_info("vgg11_lrn"), jaxcnn.model_info("vgg11")
    assert (lrn.num_params, lrn.gmacs) == (a.num_params, a.gmacs)


def test_alexnet_2012_feature_maps_grouping_and_layer_counts():
    params, maps = _abstract_run("alexnet_2012")
    # Fig. 2 / Sec. 3.5: 55x55x96 -> 27x27x256 -> 13x13x384 -> 13x13x384 -> 13x13x256 -> 6x6x256.
    assert maps["conv1"] == maps["lrn1"] == (55, 55, 96)
    assert maps["conv2"] == maps["lrn2"] == (27, 27, 256)
    assert (maps["conv3"], maps["conv4"], maps["conv5"]) == ((13, 13, 384), (13, 13, 384), (13, 13, 256))
    assert params["fc6"]["kernel"].shape == (6 * 6 * 256, 4096)  # pool5 is 6x6x256
    # conv2/4/5 see only their own tower's maps (in-features halved); conv3 sees both.
    kernels = {k: params[k]["kernel"].shape for k in ("conv1", "conv2", "conv3", "conv4", "conv5")}
    assert kernels == {
        "conv1": (11, 11, 3, 96),
        "conv2": (5, 5, 48, 256),
        "conv3": (3, 3, 256, 384),
        "conv4": (3, 3, 192, 384),
        "conv5": (3, 3, 192, 256),
    }
    model = jaxcnn.create_model("alexnet_2012")
    assert [layer[4] for layer in model.layers if isinstance(layer, tuple)] == [1, 2, 1, 2, 2]
    counts = {k: sum(p.size for p in jax.tree.leaves(v)) for k, v in params.items()}
    assert counts == {
        "conv1": 34_944, "conv2": 307_456, "conv3": 885_120, "conv4": 663_936, "conv5": 442_624,
        "fc6": 37_752_832, "fc7": 16_781_312, "fc8": 4_097_000,
    }  # fmt: skip
    assert sum(counts.values()) == jaxcnn.model_info("alexnet_2012").num_params


def test_alexnet_2012_initialisation_is_sec_5():
    model = jaxcnn.create_model("alexnet_2012")
    params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 67, 67, 3)))["params"]
    for name in ("conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"):
        bias = 1.0 if name in ("conv2", "conv4", "conv5", "fc6", "fc7") else 0.0
        np.testing.assert_array_equal(params[name]["bias"], bias)
    assert abs(float(jnp.std(params["conv3"]["kernel"])) - 0.01) < 5e-4


def test_small_input_sizes_are_the_smallest_that_reach_pool5():
    # alexnet_2012: 67 -> conv1 15 -> pool1 7 -> pool2 3 -> pool5 1; 66 leaves pool5 empty.
    params, maps = _abstract_run("alexnet_2012", 67)
    assert maps["conv1"] == (15, 15, 96) and params["fc6"]["kernel"].shape[0] == 256
    assert _abstract_run("alexnet_2012", 66)[0]["fc6"]["kernel"].shape[0] == 0
    # zfnet: 63 -> conv1 30 -> pool1 15 -> conv2 6 -> pool2 3 -> pool5 1.
    params, maps = _abstract_run("zfnet", 63)
    assert (maps["conv1"][0], maps["lrn1"][0], maps["conv2"][0], maps["lrn2"][0]) == (30, 15, 6, 3)
    assert params["fc6"]["kernel"].shape[0] == 256
    # torchvision's alexnet average-pools whatever is left to 6x6.
    params, maps = _abstract_run("alexnet", 63)
    assert maps["conv5"][:2] == (3, 3) and params["fc6"]["kernel"].shape[0] == 6 * 6 * 256


def test_zfnet_feature_maps_are_fig_3():
    params, maps = _abstract_run("zfnet")
    assert maps["conv1"] == (110, 110, 96) and maps["lrn1"] == (55, 55, 96)
    assert maps["conv2"] == (26, 26, 256) and maps["lrn2"] == (13, 13, 256)
    assert (maps["conv3"], maps["conv4"], maps["conv5"]) == ((13, 13, 384), (13, 13, 384), (13, 13, 256))
    assert params["fc6"]["kernel"].shape == (6 * 6 * 256, 4096)
    assert params["conv2"]["kernel"].shape == (5, 5, 96, 256)  # one GPU: not grouped


def test_alexnet_torchvision_geometry():
    params, maps = _abstract_run("alexnet")
    assert maps["conv1"] == (55, 55, 64) and maps["conv2"] == (27, 27, 192)
    assert maps["conv5"] == (13, 13, 256) and params["fc6"]["kernel"].shape == (9216, 4096)
    assert "lrn1" not in maps


def test_lrn_is_the_papers_formula():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 4, 7)) * 40.0
    y = np.asarray(LocalResponseNorm().apply({}, x))
    a = np.asarray(x, np.float64)
    expected = np.empty_like(a)
    n_maps, k, n, alpha, beta = 7, 2.0, 5, 1e-4, 0.75
    for i in range(n_maps):  # Sec. 3.3: sum over j = max(0, i - n/2) .. min(N - 1, i + n/2)
        window = a[..., max(0, i - n // 2) : min(n_maps - 1, i + n // 2) + 1]
        expected[..., i] = a[..., i] / (k + alpha * np.sum(window**2, axis=-1)) ** beta
    np.testing.assert_allclose(y, expected, rtol=1e-5)
    assert np.abs(y - np.asarray(x) / 2**0.75).max() > 1e-3  # the window term matters here


@pytest.mark.parametrize("size, out", [(13, 6), (5, 3), (1, 7), (7, 7), (3, 7)])
def test_adaptive_avg_pool_is_torchvisions(size, out):
    x = np.random.default_rng(0).normal(size=(2, size, size + 1, 3))
    y = np.asarray(adaptive_avg_pool(jnp.asarray(x), (out, out)))
    expected = np.empty((2, out, out, 3))
    for i in range(out):
        for j in range(out):
            r0, r1 = i * size // out, -(-(i + 1) * size // out)
            c0, c1 = j * (size + 1) // out, -(-(j + 1) * (size + 1) // out)
            expected[:, i, j] = x[:, r0:r1, c0:c1].mean(axis=(1, 2))
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_vgg_c_has_1x1_convs_as_the_third_conv_of_blocks_3_to_5():
    params, _ = _abstract_run("vgg16_c")
    kernels = {k: v["kernel"].shape[:2] for k, v in params.items() if k.startswith("conv")}
    ones = {k for k, ks in kernels.items() if ks == (1, 1)}
    assert ones == {"conv3_3", "conv4_3", "conv5_3"}
    assert all(ks == (3, 3) for k, ks in kernels.items() if k not in ones) and len(kernels) == 13
    d_params, _ = _abstract_run("vgg16")
    assert all(v["kernel"].shape[:2] == (3, 3) for k, v in d_params.items() if k.startswith("conv"))


def test_vgg_depths_and_the_lrn_and_bn_variants():
    for name, convs in (("vgg11", 8), ("vgg13", 10), ("vgg16", 13), ("vgg19", 16)):
        params, _ = _abstract_run(name, 32)
        assert sum(k.startswith("conv") for k in params) == convs
        assert {"fc6", "fc7", "fc8"} <= set(params)
    # A-LRN: one LRN, right after conv1_1 (before the first pool: full resolution).
    _, maps = _abstract_run("vgg11_lrn")
    assert [k for k in maps if k.startswith("lrn")] == ["lrn1"] and maps["lrn1"] == (224, 224, 64)
    params, _ = _abstract_run("vgg16_bn", 32)
    assert sum(k.startswith("bn") for k in params) == 13 and "bias" in params["conv1_1"]


def test_alexnet_fig1_layers_and_its_activation_switch():
    params, _ = _abstract_run("alexnet_fig1")
    assert [params[f"conv{i}"]["kernel"].shape for i in (1, 2, 3)] == [
        (5, 5, 3, 32),
        (5, 5, 32, 32),
        (5, 5, 32, 64),
    ]
    assert params["fc4"]["kernel"].shape == (4 * 4 * 64, 10)  # 32 -> 16 -> 8 -> 4 by the three pools
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 32, 32, 1))  # Fashion-MNIST: one channel
    relu = jaxcnn.create_model("alexnet_fig1")
    variables = relu.init(jax.random.PRNGKey(0), x)
    tanh = jaxcnn.create_model("alexnet_fig1", act="tanh")
    a, b = relu.apply(variables, x), tanh.apply(variables, x)
    assert a.shape == b.shape == (2, 10) and not np.allclose(a, b)  # same weights, other activation
    with pytest.raises(ValueError, match="act must be one of \\['relu', 'tanh'\\], got 'sigmoid'"):
        jaxcnn.create_model("alexnet_fig1", act="sigmoid").init(jax.random.PRNGKey(0), x)
