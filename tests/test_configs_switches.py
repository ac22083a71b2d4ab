"""Ablation switches: a config.model key reaches the network through build.create_model and changes it
the way it says (parameter count, layers present, pooling geometry) and nothing else."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util
from helpers import ROOT

from jaxcnn import build, config_lib, model_info, summary


def _model(spec, num_classes=1000, **model):
    """The network of recipe `spec` with config.model keys `model` set, as training builds it."""
    config = config_lib.load_config(str(ROOT / "configs" / spec))
    for key, value in model.items():
        config.model[key] = value
    return build.create_model(config, num_classes)


def _shapes(model, size):
    """{path: shape} of the model's parameters for (size, size, 3) inputs (abstract: no memory)."""
    x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
    variables = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, train=False), x)
    return {k: v.shape for k, v in traverse_util.flatten_dict(variables["params"]).items()}


def _count(shapes):
    return sum(int(np.prod(s)) for s in shapes.values())


def _intermediates(model, variables, x, **kwargs):
    """{module name: its output} of every top-level module of one forward pass."""
    _, state = model.apply(variables, x, capture_intermediates=True, mutable=["intermediates"], **kwargs)
    return {k: v["__call__"][0] for k, v in state["intermediates"].items() if k != "__call__"}


SMALL_ALEXNET = dict(hidden=(32, 32))  # the 2012 feature extractor with a small classifier: fast


def _alexnet_run(x, **model):
    net = _model("alexnet_imagenet.py:smoke", 10, **SMALL_ALEXNET, **model)
    variables = net.init(jax.random.PRNGKey(0), x, train=False)
    return net, variables


def test_alexnet_activation_tanh_replaces_relu_and_nothing_else():
    assert _shapes(_model("alexnet_imagenet.py", activation="tanh"), 227) == _shapes(
        _model("alexnet_imagenet.py"), 227
    )
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 67, 67, 3))
    net, variables = _alexnet_run(x, one_bias=())  # zero biases: fc7's inputs take both signs
    relu_fc7 = net.apply(variables, x, features_only=True)
    tanh_net = _model("alexnet_imagenet.py:smoke", 10, **SMALL_ALEXNET, one_bias=(), activation="tanh")
    tanh_fc7 = tanh_net.apply(variables, x, features_only=True)
    assert float(relu_fc7.min()) >= 0.0  # ReLU units
    assert float(tanh_fc7.min()) < 0.0 and float(jnp.abs(tanh_fc7).max()) < 1.0  # tanh units
    with pytest.raises(ValueError, match="activation must be 'relu' or 'tanh', got 'sigmoid'"):
        _alexnet_run(x, activation="sigmoid")


def test_alexnet_lrn_off_removes_the_two_lrn_layers_only():
    on, off = _model("alexnet_imagenet.py"), _model("alexnet_imagenet.py", lrn=False)
    assert _shapes(on, 227) == _shapes(off, 227) and _count(_shapes(on, 227)) == 60_965_224
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 67, 67, 3))
    net, variables = _alexnet_run(x)
    with_lrn = _intermediates(net, variables, x)
    net_off, _ = _alexnet_run(x, lrn=False)
    without = _intermediates(net_off, variables, x)
    assert {"lrn1", "lrn2"} <= set(with_lrn) and not {k for k in without if k.startswith("lrn")}
    assert set(with_lrn) - set(without) == {"lrn1", "lrn2"}
    # Without LRN, pool1 reads conv1's output directly.
    np.testing.assert_allclose(without["pool1"], _max_pool(without["conv1"], 3), rtol=1e-6, atol=1e-6)


def _max_pool(x, window):
    x = jnp.maximum(x, 0.0)  # conv modules return pre-activations; the net pools the ReLU's output
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, window, window, 1), (1, 2, 2, 1), "VALID")


@pytest.mark.parametrize("window", [3, 2])
def test_alexnet_pool_window_sets_the_pooling_geometry_and_keeps_the_map_sizes(window):
    # Sec. 3.4: 3x3/2 (overlapping) and 2x2/2 give the same maps: 55 -> 27 -> 13 -> 6 at 227.
    net = _model("alexnet_imagenet.py", pool_window=window)
    x = jax.ShapeDtypeStruct((1, 227, 227, 3), jnp.float32)

    def pools(x):
        variables = net.init(jax.random.PRNGKey(0), x, train=False)
        return {k: v for k, v in _intermediates(net, variables, x).items() if k.startswith("pool")}

    shapes = {k: v.shape[1:] for k, v in jax.eval_shape(pools, x).items()}
    assert shapes == {"pool1": (27, 27, 96), "pool2": (13, 13, 256), "pool5": (6, 6, 256)}
    assert _count(_shapes(net, 227)) == model_info("alexnet_2012").num_params
    # The windows themselves: pool1 is the max over window x window squares at stride 2 of lrn1.
    small = jax.random.normal(jax.random.PRNGKey(1), (2, 67, 67, 3))
    net, variables = _alexnet_run(small, pool_window=window)
    inner = _intermediates(net, variables, small)
    expected = jax.lax.reduce_window(
        inner["lrn1"], -jnp.inf, jax.lax.max, (1, window, window, 1), (1, 2, 2, 1), "VALID"
    )
    np.testing.assert_allclose(inner["pool1"], expected, rtol=1e-6, atol=1e-6)
    if window == 2:  # and not the overlapping pool's
        overlapping = _max_pool(inner["lrn1"], 3)
        assert not np.allclose(inner["pool1"], overlapping)


def test_alexnet_dropout_rate_reaches_the_model():
    x = jax.random.normal(jax.random.PRNGKey(1), (2, 67, 67, 3))
    for rate, random in [(0.5, True), (0.0, False)]:
        net, variables = _alexnet_run(x, dropout_rate=rate)
        train = net.apply(variables, x, train=True, rngs={"dropout": jax.random.PRNGKey(2)})
        assert np.allclose(train, net.apply(variables, x, train=False)) is not random, rate
    assert _shapes(_model("alexnet_imagenet.py", dropout_rate=0.0), 227) == _shapes(
        _model("alexnet_imagenet.py"), 227
    )


def _projection(cin, cout):
    return cin * cout + 2 * cout  # 1x1 conv without bias + BatchNorm scale and bias


@pytest.mark.parametrize("option", ["A", "B", "C"])
def test_resnet_shortcut_options_change_only_the_shortcuts(option):
    # He et al. Table 3, ResNet-34: A zero-pads (no parameters), B projects where the shape
    # changes (3 units, the registered net), C projects in all 16 units.
    widths, units = (64, 128, 256, 512), (3, 4, 6, 3)
    reshaping = sum(_projection(widths[i - 1], widths[i]) for i in range(1, 4))
    others = sum((n - (i > 0)) * _projection(w, w) for i, (w, n) in enumerate(zip(widths, units)))
    expected = {"A": 21_797_672 - reshaping, "B": 21_797_672, "C": 21_797_672 + others}[option]
    shapes = _shapes(_model(f"resnet_imagenet.py:34,{option}"), 32)
    assert _count(shapes) == expected
    projections = {path[0] for path in shapes if path[1].startswith("downsample")}
    assert len(projections) == {"A": 0, "B": 3, "C": 16}[option]
    plain = {k: v for k, v in shapes.items() if not k[1].startswith("downsample")}
    b_shapes = _shapes(_model("resnet_imagenet.py:34"), 32)
    assert plain == {k: v for k, v in b_shapes.items() if not k[1].startswith("downsample")}


def test_resnet_zero_init_last_bn_zeroes_each_units_last_gamma_only():
    def gammas(**model):
        net = _model("resnet_imagenet.py:18,smoke", 10, **model)
        params = net.init(jax.random.PRNGKey(0), jnp.zeros((1, 32, 32, 3)), train=False)["params"]
        flat = traverse_util.flatten_dict(params)
        return {k[:-1]: np.asarray(v) for k, v in flat.items() if k[-1] == "scale"}

    default, zeroed = gammas(), gammas(zero_init_last_bn=True)
    assert default.keys() == zeroed.keys() and all((g == 1).all() for g in default.values())
    last = {k for k in zeroed if k[-1] == "bn2" and len(k) == 2}  # each basic unit's second BN
    assert len(last) == 8  # 2 + 2 + 2 + 2 units
    for path, gamma in zeroed.items():
        assert (gamma == (0 if path in last else 1)).all(), path


@pytest.mark.parametrize(
    "spec, size, with_aux, without_aux",
    [
        ("googlenet_imagenet.py", 224, 13_378_280, 6_998_552),  # PAPERS.md: + 6,379,728 for the heads
        ("inception_v3_imagenet.py", 299, 27_161_264, 23_834_568),  # torchvision's counts
    ],
)
def test_aux_heads_switch_removes_exactly_the_heads(spec, size, with_aux, without_aux):
    on, off = _shapes(_model(spec), size), _shapes(_model(spec, aux_logits=False), size)
    assert (_count(on), _count(off)) == (with_aux, without_aux)
    assert {k for k in on if not k[0].lower().startswith("aux")} == set(off)


@pytest.mark.parametrize("width, millions", [("1.0", 4.2), ("0.75", 2.6), ("0.5", 1.3), ("0.25", 0.5)])
def test_mobilenet_width_multiplier_thins_every_layer(width, millions):
    # MobileNet v1 Table 6: parameters 4.2M / 2.6M / 1.3M / 0.5M at widths 1.0 / 0.75 / 0.5 / 0.25.
    thin, full = (
        _shapes(_model(f"mobilenet_imagenet.py:{width}"), 224),
        _shapes(_model("mobilenet_imagenet.py"), 224),
    )
    assert round(_count(thin) / 1e6, 1) == millions
    assert thin.keys() == full.keys()  # the same layers
    alpha = float(width)
    for path, shape in thin.items():
        if path[-1] == "kernel" and path[0] != "fc":
            assert shape[-1] == int(full[path][-1] * alpha), path
    # The resolution multiplier changes the input only: the same parameters at 160.
    assert _shapes(_model(f"mobilenet_imagenet.py:{width},160"), 160) == thin


def test_mobilenet_resolution_multiplier_scales_the_multiply_adds():
    # Sec. 4.2 / Table 7: the resolution multiplier scales every conv's multiply-adds by rho^2
    # (every map of 224 -> 112 -> ... -> 7 shrinks to 160 -> 80 -> ... -> 5); the fc's stay.
    def macs(spec):
        config = config_lib.load_config(str(ROOT / "configs" / spec))
        shape = (config.input.image_size,) * 2 + (3,)
        return summary(build.create_model(config, 1000), shape, print_fn=None).macs

    fc = 1024 * 1000
    full, low = macs("mobilenet_imagenet.py"), macs("mobilenet_imagenet.py:160")
    assert round(full / 1e9, 3) == model_info("mobilenet_v1").gmacs
    assert (low - fc) * 49 == (full - fc) * 25


SWITCHED = {  # recipe: the config.model switch keys it states (so --config.model.KEY=VALUE can flip them)
    "alexnet_imagenet.py": {"activation", "lrn", "pool_window", "dropout_rate"},
    "zfnet_imagenet.py": {"activation", "lrn", "pool_window", "dropout_rate"},
    "resnet_imagenet.py": {"shortcut", "zero_init_last_bn"},
    "googlenet_imagenet.py": {"aux_logits"},
    "inception_v3_imagenet.py": {"aux_logits"},
    "senet_imagenet.py": {"se_reduction"},
    "mobilenet_imagenet.py": {"width_multiplier"},
    "wrn_cifar.py": {"dropout_rate"},
}


@pytest.mark.parametrize("spec", sorted(SWITCHED))
def test_a_recipes_switches_default_to_the_registered_network(spec):
    config = config_lib.load_config(str(ROOT / "configs" / spec))
    assert SWITCHED[spec] <= set(config.model), spec
    info = model_info(config.model.name)
    net = build.create_model(config, info.num_classes)
    assert _count(_shapes(net, info.input_size[0])) == info.num_params
