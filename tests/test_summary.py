"""jaxcnn.summary: per-layer output shapes, parameters and multiply-adds against hand counts."""

import subprocess
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import pytest

import jaxcnn
from jaxcnn.model_summary import jaxpr_macs, traced_macs
from jaxcnn.model_summary import main as summary_main


class Single(nn.Module):
    """One layer under the name "layer", to check its MACs in isolation."""

    make: object

    @nn.compact
    def __call__(self, x):
        return self.make(name="layer")(x)


def _single(make, input_shape):
    result = jaxcnn.summary(Single(make), input_shape, print_fn=None)
    assert [r.path for r in result.rows] == ["layer"]
    assert result.rows[0].macs == result.macs and result.rows[0].params == result.params
    return result


def test_conv_macs_are_output_size_times_kernel_volume():
    # AlexNet's conv1: 96 filters 11x11x3, stride 4, on 227x227 -> 55x55x96.
    r = _single(lambda name: nn.Conv(96, (11, 11), strides=(4, 4), padding="VALID", name=name), (227, 227, 3))
    assert r.rows[0].output_shape == "55x55x96"
    assert r.macs == 55 * 55 * 96 * (11 * 11 * 3) == 105_415_200
    assert r.params == 96 * 11 * 11 * 3 + 96


def test_grouped_and_depthwise_conv_macs_divide_by_groups():
    # AlexNet's conv2: 256 filters 5x5 over 48 of the 96 maps (two groups), 27x27 kept.
    conv2 = lambda name: nn.Conv(256, (5, 5), padding=2, feature_group_count=2, name=name)  # noqa: E731
    r = _single(conv2, (27, 27, 96))
    assert r.macs == 27 * 27 * 256 * (5 * 5 * 48) == 223_948_800
    assert r.params == 5 * 5 * 48 * 256 + 256
    depthwise = lambda name: nn.Conv(32, (3, 3), feature_group_count=32, use_bias=False, name=name)  # noqa: E731
    r = _single(depthwise, (8, 8, 32))
    assert r.macs == 8 * 8 * 32 * 9 and r.params == 9 * 32


def test_dense_macs_are_in_times_out():
    r = _single(lambda name: nn.Dense(4096, name=name), (1, 1, 9216))
    assert r.rows[0].output_shape == "1x1x4096"
    assert r.macs == 9216 * 4096 and r.params == 9216 * 4096 + 4096


def test_conv_transpose_macs_are_input_size_times_kernel_volume():
    # 2x2/2 up-convolution (U-Net): each input value meets all 2*2*8 weights of its input map.
    up = lambda name: nn.ConvTranspose(8, (2, 2), strides=(2, 2), name=name)  # noqa: E731
    r = _single(up, (8, 8, 16))
    assert r.rows[0].output_shape == "16x16x8"
    assert r.macs == 8 * 8 * 16 * (2 * 2 * 8) == 32_768
    assert r.params == 2 * 2 * 16 * 8 + 8


class Block(nn.Module):
    @nn.compact
    def __call__(self, x):
        y = nn.relu(nn.Conv(4, (3, 3), name="conv")(x))
        y = nn.BatchNorm(use_running_average=True, name="bn")(y)
        return nn.max_pool(y, (2, 2), strides=(2, 2))


class Counted(nn.Module):
    """Counts its own MACs (a made-up 7 per call) although it calls a Dense inside."""

    @nn.compact
    def __call__(self, x):
        return nn.Dense(5, name="inner")(x)

    @nn.nowrap
    def macs(self, input_shape, output_shape):
        return 7


class Net(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = Block(name="block1")(x)
        shared = nn.Dense(6, name="shared")
        x = x.reshape(x.shape[0], -1)
        x = shared(nn.Dense(6, name="fc")(x)) + shared(x[:, :6])  # one layer, two calls
        return Counted(name="counted")(x)


def test_rows_follow_call_order_and_depth_and_add_up_to_the_totals():
    lines = []
    result = jaxcnn.summary(Net(), (8, 8, 3), print_fn=lines.append)
    assert [r.path for r in result.rows] == ["block1", "fc", "shared", "counted"]
    assert [r.output_shape for r in result.rows] == ["4x4x4", "6", "6", "5"]
    conv, fc, shared = 8 * 8 * 4 * 27, 64 * 6, 2 * 36  # the shared layer counts both of its calls
    assert [r.macs for r in result.rows] == [conv, fc, shared, 7]  # counted's own figure, once
    assert result.macs == conv + fc + shared + 7
    assert [r.params for r in result.rows] == [4 * 28 + 8, 65 * 6, 7 * 6, 7 * 5]
    assert sum(r.params for r in result.rows) == result.params
    assert lines[-1] == f"Total params: {result.params:,} | Total MACs: 0.01 M (7,375)"

    deep = jaxcnn.summary(Net(), (8, 8, 3), print_fn=None, depth=2)
    paths = [r.path for r in deep.rows]
    assert paths == ["block1", "block1/conv", "block1/bn", "fc", "shared", "counted", "counted/inner"]
    assert deep.rows[1].output_shape == "8x8x4" and deep.rows[1].macs == conv
    assert deep.rows[2].params == 8 and deep.rows[2].macs == 0  # no MACs for normalisation
    assert deep.rows[-1].macs == 0  # counted's Dense is inside a module that counted itself
    assert (deep.params, deep.macs) == (result.params, result.macs)


def test_a_module_needs_an_input_shape():
    with pytest.raises(ValueError, match="input_shape"):
        jaxcnn.summary(Net())
    with pytest.raises(ValueError, match="depth"):
        jaxcnn.summary(Net(), (8, 8, 3), depth=0)


def test_lenet5_rows_count_only_the_connected_c3_weights(capsys):
    result = jaxcnn.summary("lenet5", print_fn=None)
    rows = {r.path: r for r in result.rows}
    assert rows["c1"].output_shape == "28x28x6" and rows["c1"].macs == 28 * 28 * 6 * 25 == 117_600
    # Table I: 60 of the 96 S2-C3 map pairs are connected, 25 weights each.
    assert rows["c3"].output_shape == "10x10x16" and rows["c3"].macs == 10 * 10 * 1500 == 150_000
    assert rows["s2"].macs == rows["s4"].macs == 0  # subsampling is not a multiply-add layer
    assert result.params == 60_000
    assert result.macs == 117_600 + 150_000 + 120 * 400 + 84 * 120

    summary_main(["lenet5", "--input_size", "32"])
    out = capsys.readouterr().out
    assert "10x10x16" in out and "150,000" in out
    assert "Total params: 60,000 | Total MACs: 0.33 M (325,680)" in out


def test_the_input_shape_changes_the_counts_not_the_params():
    big = jaxcnn.summary("mnist_convnet", (56, 56, 1), print_fn=None)
    small = jaxcnn.summary("mnist_convnet", print_fn=None)  # registered 28x28x1
    assert big.rows[0].output_shape == "56x56x32" and big.rows[0].macs == 4 * small.rows[0].macs
    assert jaxcnn.summary("lenet5_modern", (32, 32, 1), print_fn=None).params == 61_706


def _every_model():
    # The deepest graphs (DenseNets, Inceptions) take a second or more each to trace; `make test-slow`.
    for name in jaxcnn.list_models():
        slow = jaxcnn.model_info(name).family in ("densenet", "inception")
        yield pytest.param(name, marks=pytest.mark.slow) if slow else name


@pytest.mark.parametrize("name", list(_every_model()))
def test_macs_and_params_are_the_registered_facts(name):
    info = jaxcnn.model_info(name)
    result = jaxcnn.summary(name, print_fn=None)
    assert result.params == info.num_params
    # 0.1%, or half a unit of the registered figure's last printed decimal (0.301 G is 0.3005-0.3015 G).
    decimals = len(repr(info.gmacs).partition(".")[2])
    assert result.macs / 1e9 == pytest.approx(info.gmacs, rel=1e-3, abs=0.5 * 10.0**-decimals)


def test_alexnet_2012_summary_is_the_papers_table():
    result = jaxcnn.summary("alexnet_2012", print_fn=None)
    shapes = {row.path: row.output_shape for row in result.rows}
    expected = {"conv1": "55x55x96", "conv2": "27x27x256", "conv3": "13x13x384", "conv4": "13x13x384",
                "conv5": "13x13x256", "pool5": "6x6x256"}  # fmt: skip
    assert {k: shapes[k] for k in expected} == expected


# What a plain model computes, read from its jaxpr, is what the summary and the registry count.
# lenet5's C3 runs as a dense 5x5 conv with zeros at the 36 of 96 map pairs Table I leaves out
# (XLA:CPU's grouped convolutions are far slower): 10 x 10 positions x 25 weights each.
TRACED = [("lenet5", 32, 10 * 10 * 25 * (6 * 16 - 60)), ("lenet5_modern", 32, 0), ("mobilenet_v2", 32, 0)]


@pytest.mark.parametrize("name, size, zeros", TRACED, ids=[t[0] for t in TRACED])
def test_traced_macs_of_a_plain_model_are_the_summarys(name, size, zeros):
    shape = (size, size, jaxcnn.model_info(name).input_size[-1])
    model = jaxcnn.create_model(name, cpu_kernels="off")
    summary = jaxcnn.summary(model, shape, print_fn=None, depth=2)
    assert traced_macs(model, shape) == summary.macs + zeros
    if name == "mobilenet_v2":  # the summary counts the depthwise 3x3s, so the trace saw them too
        assert sum(r.macs for r in summary.rows if r.path.endswith("/dw")) > 0


def test_jaxpr_macs_count_convolutions_dots_and_transposed_convolutions():
    x = jnp.ones((1, 8, 8, 16))
    up = nn.ConvTranspose(8, (2, 2), strides=(2, 2))
    variables = up.init(jax.random.PRNGKey(0), x)
    assert jaxpr_macs(jax.make_jaxpr(up.apply)(variables, x).jaxpr) == 8 * 8 * 16 * (2 * 2 * 8)
    dw = nn.Conv(16, (3, 3), feature_group_count=16)
    variables = dw.init(jax.random.PRNGKey(0), x)
    assert jaxpr_macs(jax.make_jaxpr(dw.apply)(variables, x).jaxpr) == 8 * 8 * 16 * 9
    scanned = jax.make_jaxpr(lambda a: jax.lax.scan(lambda c, _: (c @ a, None), a, length=3)[0])
    assert jaxpr_macs(scanned(jnp.ones((4, 4))).jaxpr) == 3 * 4 * 4 * 4


# ImageNet models with a torchvision counterpart: each must carry its reference MACs as data.
TORCHVISION = (
    "alexnet", "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
    "googlenet_tv", "inception_v3", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d", "wide_resnet50_2", "wide_resnet101_2",
    "densenet121", "densenet161", "densenet169", "densenet201", "mobilenet_v2",
)  # fmt: skip


def test_imagenet_models_with_a_torchvision_counterpart_register_their_macs():
    assert [n for n in TORCHVISION if jaxcnn.model_info(n).gmacs is None] == []


@pytest.mark.slow
@pytest.mark.parametrize("name", jaxcnn.list_models())
def test_traced_macs_of_every_plain_model_are_the_registered_gmacs(name):
    info = jaxcnn.model_info(name)
    zeros = {n: z for n, _, z in TRACED}.get(name, 0)  # lenet5's C3 zeros are traced, not registered
    macs = traced_macs(jaxcnn.create_model(name, cpu_kernels="off"), info.input_size) - zeros
    decimals = len(repr(info.gmacs).partition(".")[2])
    assert macs / 1e9 == pytest.approx(info.gmacs, rel=1e-3, abs=0.5 * 10.0**-decimals)


@pytest.mark.parametrize(
    "args,line",
    [
        (["resnet5"], "error: unknown model 'resnet5'. Did you mean resnet56"),
        (["lenet5", "--input_size", "28"], "error: lenet5 needs at least 32x32 inputs"),
    ],
)
def test_the_command_line_says_a_bad_name_or_size_in_one_line(args, line, capsys):
    with pytest.raises(SystemExit) as e:
        summary_main(args)
    assert str(e.value).startswith(line) and "\n" not in str(e.value)


def test_the_command_line_prints_only_the_error(root, cli_env):
    proc = subprocess.run(
        [sys.executable, "-m", "jaxcnn.model_summary", "resnet5"],
        cwd=root,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and proc.stderr.strip().startswith("error: unknown model 'resnet5'")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr  # no runpy double-import warning
