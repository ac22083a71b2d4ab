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
from jaxcnn.models.darknet import DARKNET19_BODY

FAMILY = ("densenet121", "densenet161", "densenet169", "densenet201", "densenet264", "mobilenet_v1",
          "mobilenet_v2", "darknet19", "darknet53", "unet")  # fmt: skip
# torchvision 0.29's (params, GMACs at 224x224) (PAPERS.md).
TORCHVISION = {
    "densenet121": (7_978_856, 2.834),
    "densenet161": (28_681_000, 7.728),
    "densenet169": (14_149_480, 3.360),
    "densenet201": (20_013_928, 4.291),
    "mobilenet_v2": (3_504_872, 0.301),
}
# The papers' printed multiply-adds in G, to the digits they print: MobileNet Table 2's 569 M; Darknet's
# FLOPs count two per multiply-add (YOLO9000 Table 6: 5.58 G; YOLOv3 Table 2: 18.7 G at 256).
PAPERS_GMACS = {"mobilenet_v1": (0.569, 3), "darknet19": (5.58 / 2, 2), "darknet53": (18.7 / 2, 2)}


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


@pytest.mark.parametrize("name", FAMILY)
def test_counts_and_multiply_adds_are_the_registered_facts(name):
    info = jaxcnn.model_info(name)
    assert _param_count(name) == info.num_params
    assert count_macs(jaxcnn.create_model(name), info.input_size) / 1e9 == pytest.approx(info.gmacs, rel=1e-3)


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_torchvision_counts(name):
    info = jaxcnn.model_info(name)
    assert (info.num_params, info.gmacs) == TORCHVISION[name]


@pytest.mark.parametrize("name", sorted(PAPERS_GMACS))
def test_papers_multiply_adds(name):
    printed, digits = PAPERS_GMACS[name]
    assert round(jaxcnn.model_info(name).gmacs, digits) == pytest.approx(printed)


def test_mobilenet_v1_is_569m_mult_adds_and_4_2m_params():
    assert round(count_macs(jaxcnn.create_model("mobilenet_v1"), (224, 224, 3)) / 1e6) == 569
    assert round(jaxcnn.model_info("mobilenet_v1").num_params / 1e6, 1) == 4.2


def test_darknet19_count_is_table_6s_layers():
    # 3x3 / 1x1 convs without bias, each with BN's gamma and beta, then conv19 (1x1, with bias).
    channels, count = 3, 0
    for layer in DARKNET19_BODY:
        if layer != "M":
            features, kernel = layer
            count += kernel * kernel * channels * features + 2 * features
            channels = features
    assert jaxcnn.model_info("darknet19").num_params == count + 1024 * 1000 + 1000


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
    # 3 classes instead of 2: one more 64-weight kernel column and bias in the final 1x1 conv.
    count = sum(p.size for p in jax.tree.leaves(variables["params"]))
    assert count == jaxcnn.model_info("unet").num_params + 65
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
