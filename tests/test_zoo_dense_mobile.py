"""Exactness of DenseNet, MobileNet v1/v2, Darknet-19/53 and U-Net: counts, MACs and structure."""

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcnn
from jaxcnn.layers import BatchNorm
from jaxcnn.models import mobilenet

# torchvision 0.29 counts (PAPERS.md) and counts derived from the papers' tables.
EXPECTED_PARAMS = {
    "densenet121": 7_978_856,
    "densenet161": 28_681_000,
    "densenet169": 14_149_480,
    "densenet201": 20_013_928,
    "densenet264": 33_337_704,
    "mobilenet_v1": 4_231_976,
    "mobilenet_v2": 3_504_872,
    "darknet19": 20_842_376,
    "darknet53": 41_609_928,
    "unet": 31_030_658,
}


def _init_shapes(model, shape):
    x = jax.ShapeDtypeStruct((1, *shape), jnp.float32)
    return jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x), x)


def _param_count(name):
    info = jaxcnn.model_info(name)
    variables = _init_shapes(jaxcnn.create_model(name), info.input_size)
    return sum(p.size for p in jax.tree.leaves(variables["params"]))


def count_macs(model, shape):
    """Multiply-adds of the conv, transposed-conv and dense layers for one image of `shape`."""
    total = 0

    def interceptor(next_fun, args, kwargs, context):
        nonlocal total
        out = next_fun(*args, **kwargs)
        m, x = context.module, args[0] if args else None
        if context.method_name != "__call__":
            return out
        if isinstance(m, nn.ConvTranspose):  # every input pixel meets the whole kernel
            total += math.prod(x.shape[1:-1]) * math.prod(m.kernel_size) * x.shape[-1] * m.features
        elif isinstance(m, nn.Conv):
            per_pixel = math.prod(m.kernel_size) * x.shape[-1] // m.feature_group_count * m.features
            total += math.prod(out.shape[1:-1]) * per_pixel
        elif isinstance(m, nn.Dense):
            total += x.shape[-1] * m.features
        return out

    def forward(x):
        variables = model.init(jax.random.PRNGKey(0), x)
        with nn.intercept_methods(interceptor):
            return model.apply(variables, x)

    jax.eval_shape(forward, jax.ShapeDtypeStruct((1, *shape), jnp.float32))
    return total


@pytest.mark.parametrize("name", sorted(EXPECTED_PARAMS))
def test_parameter_counts(name):
    assert jaxcnn.model_info(name).num_params == EXPECTED_PARAMS[name]
    assert _param_count(name) == EXPECTED_PARAMS[name]


@pytest.mark.parametrize(
    "name, macs",
    [
        ("densenet121", 2_834_161_664),  # torchvision: 2.834 G
        ("densenet161", 7_727_907_072),  # torchvision: 7.728 G
        ("densenet169", 3_359_843_328),  # torchvision: 3.360 G
        ("densenet201", 4_291_365_888),  # torchvision: 4.291 G
        ("mobilenet_v1", 568_740_352),  # Howard et al. Table 2: 569 M
        ("mobilenet_v2", 300_774_272),  # torchvision: 0.301 G
        ("darknet19", 2_790_989_824),  # YOLO9000 Table 6: 5.58 G FLOPs = 2 x 2.79 G
        ("darknet53", 9_349_627_904),  # YOLOv3 Table 2: 18.7 Bn FLOPs at 256 = 2 x 9.35 G
    ],
)
def test_multiply_adds_match_the_reference(name, macs):
    info = jaxcnn.model_info(name)
    counted = count_macs(jaxcnn.create_model(name), info.input_size)
    assert counted == macs
    assert counted / 1e9 == pytest.approx(info.gmacs, rel=1e-3)


def test_mobilenet_v1_is_569m_mult_adds():
    assert round(count_macs(jaxcnn.create_model("mobilenet_v1"), (224, 224, 3)) / 1e6) == 569


def test_densenet121_growth_and_feature_sizes():
    # Each block adds layers * k maps; transitions halve them (Table 1, compression 0.5).
    model = jaxcnn.create_model("densenet121")
    last = {f"denseblock{b}_layer{n}" for b, n in enumerate((6, 12, 24, 16), start=1)}
    x = jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32)

    def forward(x):
        variables = model.init(jax.random.PRNGKey(0), x)
        _, state = model.apply(
            variables, x, capture_intermediates=lambda m, _: m.name in last, mutable=["intermediates"]
        )
        return state["intermediates"]

    inter = jax.eval_shape(forward, x)
    shapes = [inter[f"denseblock{b}_layer{n}"]["__call__"][0].shape for b, n in enumerate((6, 12, 24, 16), 1)]
    assert [s[-1] for s in shapes] == [256, 512, 1024, 1024]
    assert [s[1] for s in shapes] == [56, 28, 14, 7]
    feats = jax.eval_shape(
        lambda x: model.apply(model.init(jax.random.PRNGKey(0), x), x, features_only=True), x
    )
    assert feats.shape == (1, 1024)


def test_densenet161_uses_k48_and_a_96_filter_stem():
    params = _init_shapes(jaxcnn.create_model("densenet161"), (64, 64, 3))["params"]
    assert params["conv0"]["kernel"].shape == (7, 7, 3, 96)
    assert params["denseblock1_layer1"]["conv1"]["kernel"].shape == (1, 1, 96, 4 * 48)
    assert params["denseblock1_layer1"]["conv2"]["kernel"].shape == (3, 3, 4 * 48, 48)
    assert params["classifier"]["kernel"].shape == (2208, 1000)


def test_mobilenet_v1_layers_are_depthwise_separable():
    params = _init_shapes(jaxcnn.create_model("mobilenet_v1"), (224, 224, 3))["params"]
    blocks = [params[f"conv_ds{i}"] for i in range(1, 14)]
    widths = [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]
    for block, width in zip(blocks, widths):
        channels = block["dw"]["kernel"].shape[-1]
        assert block["dw"]["kernel"].shape == (3, 3, 1, channels)  # one filter per input channel
        assert block["pw"]["kernel"].shape == (1, 1, channels, width)
    assert params["fc"]["kernel"].shape == (1024, 1000)


@pytest.mark.parametrize(
    "channels, features, stride, shortcut", [(8, 8, 1, True), (8, 8, 2, False), (8, 16, 1, False)]
)
def test_inverted_residual_adds_the_input_only_at_stride_1_with_equal_channels(
    channels, features, stride, shortcut
):
    # With the projection BN at gamma 0, beta 1 the branch outputs ones: the block returns its
    # input + 1 if it has the identity shortcut, ones otherwise.
    block = mobilenet.InvertedResidual(
        features, stride, 6, functools.partial(nn.Conv, use_bias=False),
        functools.partial(BatchNorm, use_running_average=True), nn.relu6,
    )  # fmt: skip
    x = jax.random.normal(jax.random.PRNGKey(0), (1, 8, 8, channels))
    variables = block.init(jax.random.PRNGKey(1), x)
    variables["params"]["project_bn"]["scale"] = jnp.zeros((features,))
    variables["params"]["project_bn"]["bias"] = jnp.ones((features,))
    out = block.apply(variables, x)
    np.testing.assert_allclose(out, x + 1 if shortcut else jnp.ones_like(out), atol=1e-6)


def test_mobilenet_v2_shortcut_blocks():
    # The blocks that keep their input shape (stride 1, in == out) are torchvision's residual ones.
    model = jaxcnn.create_model("mobilenet_v2")
    shapes = {}

    def record(next_fun, args, kwargs, context):
        out = next_fun(*args, **kwargs)
        if isinstance(context.module, mobilenet.InvertedResidual) and context.method_name == "__call__":
            shapes[context.module.name] = (args[0].shape, out.shape)
        return out

    def forward(x):
        variables = model.init(jax.random.PRNGKey(0), x)
        with nn.intercept_methods(record):
            return model.apply(variables, x)

    jax.eval_shape(forward, jax.ShapeDtypeStruct((1, 224, 224, 3), jnp.float32))
    assert len(shapes) == 17 and shapes["features_17"][1] == (1, 7, 7, 320)
    keeps = [int(name.split("_")[1]) for name, (inp, out) in shapes.items() if inp == out]
    assert sorted(keeps) == [3, 5, 6, 8, 9, 10, 12, 13, 15, 16]


def test_darknet_layer_counts():
    params19 = _init_shapes(jaxcnn.create_model("darknet19"), (224, 224, 3))["params"]
    kernels19 = [p for p in jax.tree.leaves(params19) if p.ndim == 4]
    assert len(kernels19) == 19  # Table 6: 19 conv layers
    assert params19["conv19"]["kernel"].shape == (1, 1, 1024, 1000) and "bias" in params19["conv19"]

    params53 = _init_shapes(jaxcnn.create_model("darknet53"), (256, 256, 3))["params"]
    convs53 = [p for p in jax.tree.leaves(params53) if p.ndim == 4]
    assert len(convs53) == 53  # 52 convolutions + the connected layer (Table 1)
    assert [sum(k.startswith(f"stage{s}_") for k in params53) for s in range(1, 6)] == [1, 2, 8, 8, 4]


@pytest.mark.parametrize("size, out", [(572, 388), (188, 4), (204, 20)])
def test_unet_unpadded_output_sizes(size, out):
    model = jaxcnn.create_model("unet")
    x = jax.ShapeDtypeStruct((1, size, size, 1), jnp.float32)
    logits = jax.eval_shape(lambda x: model.init_with_output(jax.random.PRNGKey(0), x)[0], x)
    assert logits.shape == (1, out, out, 2)


def test_unet_same_padding_features_and_bad_sizes():
    model = jaxcnn.create_model("unet", padding="SAME", num_classes=3)
    x = jax.ShapeDtypeStruct((1, 64, 48, 1), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x), x)
    assert sum(p.size for p in jax.tree.leaves(variables["params"])) == 31_030_658 + 65
    apply = lambda x, **kw: jax.eval_shape(
        lambda x: model.init_with_output(jax.random.PRNGKey(0), x, **kw)[0], x
    )
    assert apply(x).shape == (1, 64, 48, 3)
    assert apply(x, features_only=True).shape == (1, 64, 48, 64)
    with pytest.raises(ValueError, match="divisible by 16"):
        apply(jax.ShapeDtypeStruct((1, 40, 40, 1), jnp.float32))
    model = jaxcnn.create_model("unet")
    with pytest.raises(ValueError, match="124 \\+ 16 b"):
        apply(jax.ShapeDtypeStruct((1, 200, 200, 1), jnp.float32))
