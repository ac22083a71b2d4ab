"""GoogLeNet, Inception v3, Inception-v4 and Inception-ResNet-v2: counts, Table 1 rows, aux heads."""

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

import jaxcnn
from jaxcnn.layers import BatchNorm, ConvNormAct
from jaxcnn.models import inception as inc
from jaxcnn.models.googlenet import INCEPTION_V1

FAMILY = ("googlenet", "googlenet_tv", "inception_v3", "inception_v4", "inception_resnet_v2")


def _init(model, size, **kwargs):
    x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
    return jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, **kwargs), x)


@functools.cache
def _variables(name, size=None, **overrides):
    size = size or jaxcnn.model_info(name).input_size[0]
    return _init(jaxcnn.create_model(name, **overrides), size, train=False)


def _params(name, **overrides):
    return _variables(name, **overrides)["params"]


def _count(tree):
    return sum(p.size for p in jax.tree.leaves(tree))


@functools.cache
def _summary(name):
    return jaxcnn.summary(name, print_fn=None, depth=1)


@pytest.mark.parametrize(
    "name, without_aux",
    [
        ("googlenet", 6_998_552),  # paper: biases, no BN (PAPERS.md's 7,005,832 less BN's shifts, below)
        ("googlenet_tv", 6_624_904),  # torchvision 0.29
        ("inception_v3", 23_834_568),  # torchvision 0.29
    ],
)
def test_counts_with_and_without_aux_heads(name, without_aux):
    # The registered count includes the aux heads (torchvision's excludes them).
    assert _count(_params(name)) == jaxcnn.model_info(name).num_params > without_aux
    assert _count(_params(name, aux_logits=False)) == without_aux


def test_papers_7005832_is_googlenet_with_batchnorm():
    # PAPERS.md's 7,005,832: true 5x5, BN (scale + shift) instead of biases on its 7,280 conv channels.
    assert _count(_params("googlenet", aux_logits=False, batch_norm=True)) == 7_005_832 == 6_998_552 + 7_280


def test_inception_v4_is_timms_count():
    assert _count(_params("inception_v4")) == 42_679_816 == jaxcnn.model_info("inception_v4").num_params


class SlimInceptionResNetV2(nn.Module):
    """The TF-slim (timm) Inception-ResNet-v2, assembled from the library's block tables."""

    @nn.compact
    def __call__(self, x):
        norm = functools.partial(BatchNorm, use_running_average=True, epsilon=1e-3)
        unit = functools.partial(ConvNormAct, conv=functools.partial(nn.Conv, use_bias=False), norm=norm)
        mixed = functools.partial(inc.Mixed, unit=unit, count_include_pad=False)
        up = functools.partial(nn.Conv, use_bias=True)
        x = unit(32, (3, 3), 2, "VALID")(x)
        x = unit(32, (3, 3), 1, "VALID")(x)
        x = unit(64, (3, 3))(x)
        x = nn.max_pool(x, (3, 3), (2, 2))
        x = unit(192, (3, 3), 1, "VALID")(unit(80, (1, 1))(x))
        x = nn.max_pool(x, (3, 3), (2, 2))
        x = mixed(((inc.ConvSpec(96, 1),), *inc.v3_a(64)[1:]))(x)  # Mixed_5b: 96 + 64 + 96 + 64 maps
        for _ in range(10):
            x = mixed(inc.IR_A, residual_scale=0.17, up_conv=up)(x)
        x = mixed(inc.reduction_a(256, 256, 384, 384))(x)
        for _ in range(20):
            x = mixed(inc.IR_B, residual_scale=0.1, up_conv=up)(x)
        x = mixed(inc.IR_REDUCTION_B)(x)
        for _ in range(9):
            x = mixed(inc.IR_C, residual_scale=0.2, up_conv=up)(x)
        x = mixed(inc.IR_C, residual_scale=1.0, up_conv=up, act=lambda y: y)(x)  # no ReLU on the last
        x = unit(1536, (1, 1))(x)
        return nn.Dense(1000)(jnp.mean(x, axis=(1, 2)))


def test_inception_resnet_v2_paper_count_and_timms_from_the_same_blocks():
    assert _count(_params("inception_resnet_v2")) == jaxcnn.model_info("inception_resnet_v2").num_params
    assert _count(_init(SlimInceptionResNetV2(), 299)["params"]) == 55_843_464


# Table 1 of Szegedy et al. 2015: params in K (= 1024 weights, biases not counted), ops in M (1e6 MACs).
TABLE_1 = {
    "conv2": (112, 360),
    "inception_3a": (159, 128),
    "inception_3b": (380, 304),
    "inception_4a": (364, 73),
    "inception_4b": (437, 88),
    "inception_4c": (463, 100),
    "inception_4d": (580, 119),
    "inception_4e": (840, 170),
    "inception_5a": (1072, 54),
    "inception_5b": (1388, 71),
    "fc": (1000, 1),
}


@functools.cache
def _googlenet_rows():
    params = _params("googlenet")
    macs = {r.path: r.macs for r in _summary("googlenet").rows}
    weights = {k: sum(p.size for p in jax.tree.leaves(v) if p.ndim > 1) for k, v in params.items()}
    weights["conv2"] = weights["conv2_3x3_reduce"] + weights["conv2_3x3"]
    macs["conv2"] = macs["conv2_3x3_reduce"] + macs["conv2_3x3"]
    return {row: (weights[row] / 1024, macs[row] / 1e6) for row in TABLE_1}


@pytest.mark.parametrize("row", [r for r in TABLE_1 if r != "inception_5a"])
def test_googlenet_ops_are_table_1s(row):
    # Every printed ops figure follows from the printed filter counts, except 5a's 54M (its filters
    # give 51.1M; its 1072K params are equally off: 1018K).
    assert abs(_googlenet_rows()[row][1] - TABLE_1[row][1]) <= 0.7


@pytest.mark.parametrize("row", ["conv2", "inception_3a", "inception_3b", "inception_4b", "fc"])
def test_googlenet_params_are_table_1s(row):
    # Within the table's rounding (<= 1K). Other rows print figures 1-7% off their own filter counts
    # (4a 364K for 366.75K, 4c 463K for 497.5K, 4d 580K for 590.5K, 4e 840K for 847K, 5b 1388K for 1409K).
    assert abs(_googlenet_rows()[row][0] - TABLE_1[row][0]) <= 1.0


def test_googlenet_rows_and_feature_maps():
    rows = [(r.path, r.output_shape) for r in _summary("googlenet").rows]
    assert rows[:5] == [
        ("conv1_7x7", "112x112x64"),
        ("norm1", "56x56x64"),  # LRN after pool1 (Fig. 3)
        ("conv2_3x3_reduce", "56x56x64"),
        ("conv2_3x3", "56x56x192"),
        ("norm2", "56x56x192"),  # LRN after conv2, before pool2
    ]
    shapes = dict(rows)
    assert shapes["inception_3a"] == "28x28x256" and shapes["inception_4a"] == "14x14x512"
    assert shapes["inception_4e"] == "14x14x832" and shapes["inception_5b"] == "7x7x1024"
    assert shapes["aux1"] == shapes["aux2"] == "1000"
    tv = [r.path for r in _summary("googlenet_tv").rows]
    assert "norm1" not in tv and "norm2" not in tv


@pytest.mark.parametrize("name", ["googlenet", "googlenet_tv", "inception_v3"])
def test_aux_heads_cost_no_macs_out_of_training(name):
    rows = {r.path: r for r in _summary(name).rows}
    heads = [p for p in rows if p.startswith("aux") or p == "AuxLogits"]
    assert heads and all(rows[p].macs == 0 and rows[p].params > 0 for p in heads)
    assert _summary(name).macs / 1e9 == pytest.approx(jaxcnn.model_info(name).gmacs, abs=5e-4)


def test_five_by_five_branch_kernels():
    paper, tv = _params("googlenet"), _params("googlenet_tv")
    for block in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b"):
        reduce, out = INCEPTION_V1[block][3:5]
        assert paper[f"inception_{block}"]["conv_5x5"]["conv"]["kernel"].shape == (5, 5, reduce, out)
        assert tv[f"inception_{block}"]["conv_5x5"]["conv"]["kernel"].shape == (3, 3, reduce, out)
    assert (
        "bias" in paper["inception_3a"]["conv_5x5"]["conv"] and "bn" not in paper["inception_3a"]["conv_5x5"]
    )
    assert "bias" not in tv["inception_3a"]["conv_5x5"]["conv"] and "bn" in tv["inception_3a"]["conv_5x5"]


@pytest.mark.parametrize(
    "name, aux_heads",
    [
        ("googlenet", 2),
        ("googlenet_tv", 2),
        ("inception_v3", 1),
        ("inception_v4", 0),
        ("inception_resnet_v2", 0),
    ],
)
def test_aux_logits_only_in_training_and_only_when_enabled(name, aux_heads):
    # Output structures under eval_shape; test_registry runs the real forwards at small_input_size.
    size = jaxcnn.model_info(name).small_input_size
    x = jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)
    rngs = {"dropout": jax.random.PRNGKey(1)}
    for overrides in [{}, {"aux_logits": False}] if aux_heads else [{}]:
        model = jaxcnn.create_model(name, num_classes=7, **overrides)
        variables = _variables(name, size, num_classes=7, **overrides)
        assert jax.eval_shape(model.apply, variables, x).shape == (2, 7)
        train = functools.partial(model.apply, train=True, rngs=rngs, mutable=["batch_stats"])
        train_out, _ = jax.eval_shape(train, variables, x)
        if aux_heads and not overrides:
            logits, aux = train_out
            assert logits.shape == (2, 7) and len(aux) == aux_heads
            assert all(a.shape == (2, 7) for a in aux)
        else:
            assert isinstance(train_out, jax.ShapeDtypeStruct) and train_out.shape == (2, 7)
            assert not any(k.startswith("aux") or k == "AuxLogits" for k in variables["params"])


@pytest.mark.parametrize(
    "name, stages",
    [
        ("inception_v3", {"Mixed_5d": "35x35x288", "Mixed_6e": "17x17x768", "Mixed_7c": "8x8x2048"}),
        (
            "inception_v4",
            {"stem_mixed_5a": "35x35x384", "reduction_a": "17x17x1024", "inception_c3": "8x8x1536"},
        ),
        (
            "inception_resnet_v2",
            {"stem_mixed_5a": "35x35x384", "reduction_a": "17x17x1152", "inception_c5": "8x8x2144"},
        ),
    ],
)
def test_grid_sizes_at_299(name, stages):
    shapes = {r.path: r.output_shape for r in _summary(name).rows}
    assert {k: shapes[k] for k in stages} == stages


def test_inception_resnet_v2_blocks_and_residual_projections():
    params = _params("inception_resnet_v2")
    for letter, depth, branches, width in (("a", 5, 128, 384), ("b", 10, 384, 1152), ("c", 5, 448, 2144)):
        assert sorted(k for k in params if k.startswith(f"inception_{letter}")) == sorted(
            f"inception_{letter}{i + 1}" for i in range(depth)
        )
        up = params[f"inception_{letter}1"]["up"]  # linear 1x1 with bias, no BN (Sec. 3.2)
        assert up["kernel"].shape == (1, 1, branches, width) and up["bias"].shape == (width,)


def test_smallest_inputs_and_too_small_ones():
    for name in FAMILY:
        size = jaxcnn.model_info(name).small_input_size
        variables = _variables(name, size)  # the smallest size initialises (test_registry runs it)
        x = jax.ShapeDtypeStruct((1, size - 1, size - 1, 3), jnp.float32)
        with pytest.raises(ValueError, match="too small"):
            jax.eval_shape(jaxcnn.create_model(name).apply, variables, x)


@pytest.mark.parametrize(
    "name, width, include_pad",
    [("inception_v3", 2048, True), ("inception_v4", 1536, False), ("inception_resnet_v2", 2144, False)],
)
def test_features_and_average_pool_padding(name, width, include_pad):
    # torchvision's Inception3 averages over the zero padding too; TF-slim's SAME avg-pool does not.
    size = jaxcnn.model_info(name).small_input_size
    seen = set()

    def record(next_fun, args, kwargs, context):
        if isinstance(context.module, inc.Mixed):
            seen.add(context.module.count_include_pad)
        return next_fun(*args, **kwargs)

    x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
    with nn.intercept_methods(record):
        out = jax.eval_shape(
            functools.partial(jaxcnn.create_model(name).apply, features_only=True), _variables(name, size), x
        )
    assert out.shape == (1, width) and seen == {include_pad}
    ones = jnp.ones((1, 3, 3, 1))
    pool = inc.Mixed(((inc.AVG,),), unit=ConvNormAct, count_include_pad=include_pad)
    corner = pool.apply({}, ones)[0, 0, 0, 0]
    assert corner == pytest.approx(4 / 9 if include_pad else 1.0)
