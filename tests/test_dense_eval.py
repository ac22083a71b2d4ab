"""Dense (fully-convolutional) evaluation on inputs larger than the training crop (VGG Sec. 3.2).

At the native size every model computes what it always did; on larger inputs the flatten -> fc
heads (AlexNet, ZFNet, VGG) slide fc6 as a convolution with the same parameters and average the
class score map, and the fixed-window average pools (GoogLeNet 7x7, Inception 8x8) slide their
window. The global-average-pool families (ResNet, DenseNet, MobileNet, DarkNet) need nothing new.
MNIST nets (28/32-pixel digits, single view) are not evaluated densely; U-Net is per-pixel already.
"""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcnn
from jaxcnn.layers import window_avg_pool

# Tracing the deepest nets takes seconds each (measured: 2-5 s); they run with `make test-slow`.
_SLOW_TO_TRACE = {
    "densenet161",
    "densenet201",
    "densenet264",
    "resnet200",
    "resnet152_v1",
    "inception_resnet_v2",
}
_NOT_DENSE = {"lenet5", "lenet5_modern", "mnist_convnet", "alexnet_fig1", "unet"}  # fixed-size nets, U-Net


def _imagenet_like():
    for name in jaxcnn.list_models():
        if name not in _NOT_DENSE:
            yield pytest.param(name, marks=pytest.mark.slow) if name in _SLOW_TO_TRACE else name


def _init_shapes(model, size):
    x = jax.ShapeDtypeStruct((2, size, size, 3), jnp.float32)
    return jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, train=False), x)


@pytest.mark.parametrize("name", list(_imagenet_like()))
def test_larger_inputs_give_class_logits_with_the_native_parameters(name):
    # Abstract evaluation: the parameters built at the native size accept a 1.3x, non-square input
    # (no new parameters, no shape change) and give (batch, classes).
    info = jaxcnn.model_info(name)
    model = jaxcnn.create_model(name)
    variables = _init_shapes(model, info.input_size[0])
    big = round(1.3 * info.input_size[0])
    x = jax.ShapeDtypeStruct((2, big, big + 7, 3), jnp.float32)
    out = jax.eval_shape(lambda v, x: model.apply(v, x, train=False), variables, x)
    assert out.shape == (2, info.num_classes)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in jaxcnn.list_models() if n not in _NOT_DENSE])
def test_full_models_give_finite_logits_on_larger_inputs(name):
    info = jaxcnn.model_info(name)
    model = jaxcnn.create_model(name)
    native = info.input_size[0]
    variables = jax.jit(lambda x: model.init(jax.random.PRNGKey(1), x))(jnp.zeros((1, native, native, 3)))
    big = round(1.3 * native)
    x = jax.random.normal(jax.random.PRNGKey(0), (1, big, big + 7, 3))
    logits = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
    assert logits.shape == (1, info.num_classes) and np.all(np.isfinite(logits))


def test_unet_is_per_pixel_at_any_valid_size():
    model = jaxcnn.create_model("unet")
    variables = jax.eval_shape(
        lambda x: model.init(jax.random.PRNGKey(0), x), jax.ShapeDtypeStruct((1, 572, 572, 1), jnp.float32)
    )
    out = jax.eval_shape(model.apply, variables, jax.ShapeDtypeStruct((1, 636, 572, 1), jnp.float32))
    assert out.shape == (1, 636 - 184, 572 - 184, 2)  # 572 -> 388 (Fig. 1), 64 more rows -> 64 more


def _run(model, variables, x, layers=("fc6",), train=False, rng=0):
    """Logits and, for the named layers, (input, output) of their __call__."""

    def run(variables, x):
        seen = {}

        def grab(next_fun, args, kwargs, context):
            y = next_fun(*args, **kwargs)
            if context.method_name == "__call__" and context.module.name in layers:
                seen[context.module.name] = (args[0], y)
            return y

        with nn.intercept_methods(grab):
            out = model.apply(variables, x, train=train, rngs={"dropout": jax.random.PRNGKey(rng)})
        return out, seen

    return jax.jit(run)(variables, x)


def _head(params, window_map, names):
    """The trained head on one flattened window: fc -> ReLU -> ... -> fc (eval: no dropout)."""
    h = window_map.reshape(window_map.shape[0], -1)
    for i, name in enumerate(names):
        h = h @ params[name]["kernel"] + params[name]["bias"]
        h = jax.nn.relu(h) if i < len(names) - 1 else h
    return h


# Reduced widths of the real families (same code, same geometry), so they run in seconds.
SMALL_VGG = dict(config=(8, "M", 8, "M", 16, 16, "M", 16, 16, "M", 16, 16, "M"), hidden=(32, 32))
SMALL_ALEXNET_2012 = dict(
    layers=((8, 11, 4, 0, 1), "lrn", "pool", (16, 5, 1, 2, 2), "lrn", "pool",
            (24, 3, 1, 1, 1), (24, 3, 1, 1, 2), (16, 3, 1, 1, 2), "pool"),
    hidden=(32, 32),
)  # fmt: skip
# Unpadded convs; total stride 4 * 2 * 2 * 2 = 32; the LRN / pool / group geometry of the 2012 net.
UNPADDED_ALEXNET = (
    (8, 11, 4, 0, 1), "lrn", "pool", (16, 5, 1, 0, 2), "lrn", "pool",
    (24, 3, 1, 0, 1), (24, 3, 1, 0, 2), (16, 3, 1, 0, 2), "pool",
)  # fmt: skip
CASES = [  # (name, overrides, native size, larger sizes)
    ("vgg11", SMALL_VGG, 224, (256, 288, 384)),
    ("vgg11_bn", SMALL_VGG, 224, (288,)),
    ("alexnet_2012", SMALL_ALEXNET_2012, 227, (291,)),
    ("zfnet", dict(layers=SMALL_ALEXNET_2012["layers"], hidden=(32, 32)), 224, (288,)),
    ("alexnet", dict(hidden=(32, 32)), 224, (320,)),
]


@pytest.mark.parametrize("name, overrides, native, sizes", CASES)
def test_flatten_heads_native_size_unchanged_and_larger_sizes_dense(name, overrides, native, sizes):
    model = jaxcnn.create_model(name, num_classes=10, **overrides)
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (2, native, native, 3))
    variables = jax.jit(lambda x: model.init(jax.random.PRNGKey(1), x, train=False))(x)
    params = variables["params"]
    shapes = jax.tree.map(jnp.shape, params)
    fcs = sorted(k for k in params if k.startswith("fc"))

    # Native size: fc6 flattens the map it was built for, exactly the head it was trained as.
    logits, seen = _run(model, variables, x)
    fc6_in, fc6_out = seen["fc6"]
    assert fc6_in.ndim == 2 and fc6_out.ndim == 2
    np.testing.assert_allclose(logits, _head(params, fc6_in, fcs), rtol=1e-5, atol=1e-5)

    for size in sizes:
        big = jax.random.normal(jax.random.fold_in(key, size), (2, size, size + 5, 3))
        logits, seen = _run(model, variables, big, layers=("fc6", fcs[-1]))
        assert logits.shape == (2, 10) and np.all(np.isfinite(logits))
        fc6_in, _ = seen["fc6"]
        scores = seen[fcs[-1]][1]  # the class score map, (2, H - h + 1, W - w + 1, 10)
        rows = params["fc6"]["kernel"].shape[0] // fc6_in.shape[-1]
        h = w = int(rows**0.5)
        assert scores.shape == (2, fc6_in.shape[1] - h + 1, fc6_in.shape[2] - w + 1, 10)
        assert scores.shape[1] * scores.shape[2] > 1
        # Every position of the score map is the trained head on that h x w window of the map ...
        for i in {0, scores.shape[1] - 1}:
            for j in {0, scores.shape[2] - 1}:
                expected = _head(params, fc6_in[:, i : i + h, j : j + w], fcs)
                np.testing.assert_allclose(scores[:, i, j], expected, rtol=1e-4, atol=1e-5)
        # ... and the logits are the score map averaged over positions (before any softmax).
        np.testing.assert_allclose(logits, scores.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    assert jax.tree.map(jnp.shape, params) == shapes
    if model.adaptive_pool is not None:  # a fixed fc6 window: init on a larger input is the same
        big_init = jax.jit(lambda x: model.init(jax.random.PRNGKey(1), x, train=False))(big)
        jax.tree.map(np.testing.assert_array_equal, big_init, variables)


@pytest.mark.parametrize(
    "name, overrides, native",
    [
        # 1x1 convolutions only: no padding, so a window of the big image sees exactly the crop.
        ("vgg11", dict(config=((8, 1), "M", (8, 1), "M", (16, 1), "M", (16, 1), "M", (16, 1), "M")), 224),
        ("alexnet_2012", dict(layers=UNPADDED_ALEXNET), 227),
    ],
)
def test_score_map_is_the_network_on_each_window_crop(name, overrides, native):
    # With no padding the network is exactly shift-equivariant: score map position (i, j) is the
    # network's native forward pass on the crop at offset (32 i, 32 j) (VGG Sec. 3.2's equivalence).
    model = jaxcnn.create_model(name, num_classes=7, hidden=(32, 32), **overrides)
    key = jax.random.PRNGKey(0)
    variables = jax.jit(lambda x: model.init(key, x))(jnp.zeros((1, native, native, 3)))
    last = sorted(k for k in variables["params"] if k.startswith("fc"))[-1]
    big = jax.random.normal(key, (2, native + 64, native + 96, 3))
    logits, seen = _run(model, variables, big, layers=(last,))
    scores = seen[last][1]
    assert scores.shape == (2, 3, 4, 7)
    native_fn = jax.jit(lambda x: model.apply(variables, x))
    for i in range(3):
        for j in range(4):
            crop = big[:, 32 * i : 32 * i + native, 32 * j : 32 * j + native]
            np.testing.assert_allclose(scores[:, i, j], native_fn(crop), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(logits, scores.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)


def test_dropout_is_off_in_dense_evaluation():
    model = jaxcnn.create_model("vgg11", num_classes=10, **SMALL_VGG)
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 288, 288, 3))
    shapes = _init_shapes(model, 224)
    variables = jax.tree.map(lambda s: 0.1 * jax.random.normal(jax.random.PRNGKey(1), s.shape), shapes)

    @jax.jit
    def run(variables, x):
        def apply(train, rng):
            return model.apply(variables, x, train=train, rngs={"dropout": jax.random.PRNGKey(rng)})

        return apply(False, 1), apply(False, 2), apply(True, 1)

    eval_a, eval_b, train_a = run(variables, x)
    np.testing.assert_array_equal(eval_a, eval_b)
    assert np.abs(np.asarray(train_a) - np.asarray(eval_a)).max() > 1e-3  # dropout does act in training


def test_too_small_input_for_a_fixed_fc6_is_a_clear_error():
    model = jaxcnn.create_model("alexnet_2012", num_classes=10, **SMALL_ALEXNET_2012)
    variables = _init_shapes(model, 227)
    x = jax.ShapeDtypeStruct((1, 195, 195, 3), jnp.float32)
    with pytest.raises(ValueError, match=r"fc6 was built for a 6x6 map, this input gives 5x5"):
        jax.eval_shape(lambda v, x: model.apply(v, x), variables, x)


def _sliding_mean(a, k):
    a = np.asarray(a, np.float64)
    kh, kw = min(k, a.shape[1]), min(k, a.shape[2])
    rows, cols = a.shape[1] - kh + 1, a.shape[2] - kw + 1
    return np.mean(
        [a[:, i : i + kh, j : j + kw].mean(axis=(1, 2)) for i in range(rows) for j in range(cols)], 0
    )


def test_window_avg_pool_is_the_mean_of_the_sliding_window_means():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 9, 11, 3))
    pooled = np.asarray(window_avg_pool(x, 7))
    np.testing.assert_allclose(pooled, _sliding_mean(x, 7), rtol=1e-5)
    assert np.abs(pooled - np.asarray(x).mean(axis=(1, 2))).max() > 1e-4  # not the global mean here
    np.testing.assert_allclose(window_avg_pool(x[:, :5], 7), _sliding_mean(x[:, :5], 7), rtol=1e-5)
    # At the training size (the map is the window) it is exactly the global mean it always was.
    np.testing.assert_array_equal(window_avg_pool(x[:, :7, :7], 7), jnp.mean(x[:, :7, :7], axis=(1, 2)))


@pytest.mark.parametrize(
    "name, window",
    [("googlenet", 7), ("googlenet_tv", 7), ("inception_v3", 8), ("inception_v4", 8),
     pytest.param("inception_resnet_v2", 8, marks=pytest.mark.slow)],
)  # fmt: skip
def test_fixed_window_pools_are_slid_at_stride_1_on_larger_inputs(name, window):
    # Traced only: the eval graph at 1.3x holds one k x k stride-1 average pool (the classifier
    # pool; the modules' pools are 3x3) and none at the native size, where the mean is global.
    info = jaxcnn.model_info(name)
    model = jaxcnn.create_model(name)
    variables = _init_shapes(model, info.input_size[0])

    def classifier_pools(size):
        x = jax.ShapeDtypeStruct((1, size, size, 3), jnp.float32)
        jaxpr = jax.make_jaxpr(lambda v, x: model.apply(v, x, train=False))(variables, x)
        return [
            e for e in jaxpr.eqns
            if e.primitive.name == "reduce_window_sum"
            and tuple(e.params["window_dimensions"]) == (1, window, window, 1)
            and set(e.params["window_strides"]) == {1}
        ]  # fmt: skip

    assert len(classifier_pools(round(1.3 * info.input_size[0]))) == 1
    assert classifier_pools(info.input_size[0]) == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, native, last_block", [("googlenet_tv", 224, "inception_5b"), ("inception_v3", 299, "Mixed_7c")]
)
def test_fixed_window_pools_slide_on_larger_inputs(name, native, last_block):
    # GoogLeNet's 7x7 and Inception v3's 8x8 pools: the classifier sees the mean of the sliding
    # window means of the last map (its score map at every window, averaged, as it is linear).
    model = jaxcnn.create_model(name, num_classes=10)
    variables = jax.jit(lambda x: model.init(jax.random.PRNGKey(1), x))(jnp.zeros((1, native, native, 3)))
    x = jax.random.normal(jax.random.PRNGKey(0), (1, native + 32, native + 64, 3))
    logits, seen = _run(model, variables, x, layers=("fc", last_block))
    last_map, classifier_input = seen[last_block][1], seen["fc"][0]
    window = 7 if name.startswith("googlenet") else 8
    assert min(last_map.shape[1:3]) > window
    np.testing.assert_allclose(classifier_input, _sliding_mean(last_map, window), rtol=1e-4, atol=1e-6)
    assert logits.shape == (1, 10) and np.all(np.isfinite(logits))
