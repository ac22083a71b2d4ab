"""jaxcnn.cpu_ops gives plain flax's numbers: 1x1 convolutions as matrix products (with a
hand-written backward pass), k x k kernel gradients summed over chunks of the batch, depthwise
convolutions as shifted multiply-adds, grouped ones as per-group matmuls, the fused BatchNorm, ReLU
differentiated through its output, and max-pooling with a one-sweep backward pass; create_model
injects them on CPU only, and a plain model has none of their custom differentiation rules."""

import pathlib

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn import cpu_ops, layers, registry
from jaxcnn.cpu_ops import (
    BatchNorm,
    Conv,
    _batch_norm_train,
    _moments,
    _normalize,
    max_pool,
    relu_from_output,
)

CASES = [
    dict(features=8, kernel_size=(1, 1)),
    dict(features=8, kernel_size=(1, 1), strides=(2, 2)),
    dict(features=8, kernel_size=(1, 1), padding="VALID", use_bias=False),
    dict(features=8, kernel_size=(1, 1), strides=2, padding=[(0, 0), (0, 0)]),
    dict(features=8, kernel_size=(3, 3), strides=(2, 2)),  # not 1x1: lax's own convolution
    dict(features=8, kernel_size=(1, 1), feature_group_count=2),  # grouped 1x1
    dict(features=4, kernel_size=(3, 3), feature_group_count=4, padding=[(1, 1), (1, 1)]),  # depthwise
    dict(features=4, kernel_size=(3, 3), strides=(2, 2), feature_group_count=4, padding=[(1, 1), (1, 1)]),
    dict(features=4, kernel_size=(5, 5), strides=(2, 2), feature_group_count=4, padding="SAME"),
    dict(features=4, kernel_size=(3, 3), feature_group_count=4, padding="VALID", use_bias=False),
    dict(features=8, kernel_size=(3, 3), feature_group_count=4),  # depthwise, multiplier 2: as grouped
    dict(features=8, kernel_size=(3, 3), feature_group_count=2),  # grouped (ResNeXt, AlexNet's towers)
    dict(features=6, kernel_size=(5, 5), strides=(2, 2), feature_group_count=2, padding=[(2, 2), (1, 0)]),
]


def _assert_conv_matches_flax_conv(kwargs, x, grad_atol=1e-5):
    ours, reference = Conv(**kwargs), nn.Conv(**kwargs)
    params = reference.init(jax.random.PRNGKey(1), x)
    np.testing.assert_allclose(ours.apply(params, x), reference.apply(params, x), rtol=1e-6, atol=1e-6)

    def loss(module):
        return lambda p, x: jnp.sum(jnp.sin(module.apply(p, x)))

    g_ours = jax.grad(loss(ours), argnums=(0, 1))(params, x)
    g_ref = jax.grad(loss(reference), argnums=(0, 1))(params, x)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=grad_atol), g_ours, g_ref)


@pytest.mark.parametrize("kwargs", CASES, ids=[str(c) for c in CASES])
def test_conv_matches_flax_conv_forward_and_gradients(kwargs):
    _assert_conv_matches_flax_conv(kwargs, jax.random.normal(jax.random.PRNGKey(0), (2, 9, 9, 4)))


@pytest.mark.parametrize("strides, padding", [((1, 1), "SAME"), ((2, 2), [(1, 1), (0, 1)])])
def test_conv_kernel_gradient_summed_over_chunks_of_the_batch_is_exact(strides, padding, monkeypatch):
    # A budget of 8 examples' maps: 24 examples are 3 interleaved chunks.
    x = jax.random.normal(jax.random.PRNGKey(0), (24, 6, 6, 3))
    out = (6 // strides[0]) ** 2 * 5
    monkeypatch.setattr(cpu_ops, "KERNEL_GRADIENT_CHUNK_BYTES", 8 * (6 * 6 * 3 + out) * 4)
    assert cpu_ops._kernel_gradient_chunks(x, jnp.zeros((3, 3, 3, 5)), strides, [(1, 1), (1, 1)]) == 3
    chunked = []
    spatial = cpu_ops._spatial
    monkeypatch.setattr(cpu_ops, "_spatial", lambda *args: chunked.append(args[-1]) or spatial(*args))
    _assert_conv_matches_flax_conv(  # kernel gradients are sums of 864 terms
        dict(features=5, kernel_size=(3, 3), strides=strides, padding=padding), x, grad_atol=1e-4
    )
    assert chunked and set(chunked) == {3}, chunked  # the chunked path ran, in 3 chunks


def _close(a, b, tol=1e-5):
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=tol, atol=tol), a, b)


@pytest.mark.parametrize("scale_init", ["ones", "zeros"])
def test_batch_norm_matches_flax_batch_norm(scale_init):
    x = jax.random.normal(jax.random.PRNGKey(0), (6, 5, 5, 8)) * 3.0 + 1.5
    ours = BatchNorm(scale_init=getattr(nn.initializers, scale_init))
    reference = layers.BatchNorm(scale_init=getattr(nn.initializers, scale_init))
    variables = reference.init(jax.random.PRNGKey(1), x, use_running_average=False)
    _close(ours.init(jax.random.PRNGKey(1), x, use_running_average=False), variables, tol=0)
    variables = {
        "params": {"scale": jnp.linspace(-2.0, 2.0, 8), "bias": jnp.arange(8.0)},
        "batch_stats": {"mean": jnp.full((8,), 0.5), "var": jnp.full((8,), 2.0)},
    }
    cotangent = jax.random.normal(jax.random.PRNGKey(2), x.shape)

    def loss(module):
        def f(params, x):
            y, updates = module.apply(
                {"params": params, "batch_stats": variables["batch_stats"]},
                x,
                use_running_average=False,
                mutable=["batch_stats"],
            )
            return jnp.vdot(relu_from_output(y), cotangent), updates

        return f

    (l_ours, stats_ours), g_ours = jax.value_and_grad(loss(ours), (0, 1), has_aux=True)(
        variables["params"], x
    )
    (l_ref, stats_ref), g_ref = jax.value_and_grad(loss(reference), (0, 1), has_aux=True)(
        variables["params"], x
    )
    _close(l_ours, l_ref)
    _close(stats_ours, stats_ref)
    _close(g_ours, g_ref)
    _close(
        ours.apply(variables, x, use_running_average=True),
        reference.apply(variables, x, use_running_average=True),
    )


def test_batch_norm_closed_form_backward_matches_autodiff_for_every_output():
    # The statistics are outputs too: cotangents on them must flow back into x.
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 3, 3, 5)) * 2.0 - 1.0
    scale, bias = jnp.linspace(0.5, 1.5, 5), jnp.linspace(-1.0, 1.0, 5)
    cotangents = [jax.random.normal(jax.random.PRNGKey(k), s) for k, s in enumerate([x.shape, (5,), (5,)])]

    def plain(x, scale, bias):
        mean, var = _moments(x)
        return _normalize(x, mean, var, scale, bias, 1e-5, jnp.float32), mean, var

    def project(f):
        return lambda *args: sum(jnp.vdot(o, c) for o, c in zip(f(*args), cotangents))

    fused = jax.grad(project(lambda *a: _batch_norm_train(*a, 1e-5, jnp.float32)), (0, 1, 2))(x, scale, bias)
    _close(fused, jax.grad(project(plain), (0, 1, 2))(x, scale, bias), tol=1e-4)


def test_batch_norm_in_bfloat16_keeps_float32_statistics():
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 3, 3, 5)).astype(jnp.bfloat16)
    module = BatchNorm(dtype=jnp.bfloat16)
    variables = module.init(jax.random.PRNGKey(1), x, use_running_average=False)
    y, updates = module.apply(variables, x, use_running_average=False, mutable=["batch_stats"])
    assert y.dtype == jnp.bfloat16 and updates["batch_stats"]["mean"].dtype == jnp.float32
    grads = jax.grad(
        lambda x: (
            module.apply(variables, x, use_running_average=False, mutable=["batch_stats"])[0]
            .astype(jnp.float32)
            .sum()
        )
    )(x)
    assert grads.dtype == jnp.bfloat16


def test_relu_gradient_is_jax_relu_gradient_including_zero():
    x = jnp.array([-2.0, -0.0, 0.0, 1e-30, 3.0])
    np.testing.assert_array_equal(relu_from_output(x), jax.nn.relu(x))
    np.testing.assert_array_equal(
        jax.grad(lambda x: jnp.sum(relu_from_output(x) * 7.0))(x),
        jax.grad(lambda x: jnp.sum(jax.nn.relu(x) * 7.0))(x),
    )


POOLS = [
    ((2, 9, 9, 3), (3, 3), (2, 2), ((1, 1), (1, 1))),  # ResNet's stem pool
    ((2, 8, 8, 3), (2, 2), (2, 2), "VALID"),  # VGG's
    ((2, 10, 7, 3), (3, 3), (1, 1), "SAME"),  # GoogLeNet's pool branch
    ((2, 11, 11, 4), (3, 3), (2, 2), ((0, 1), (0, 1))),  # ceil-mode padding
]


@pytest.mark.parametrize("shape, window, strides, padding", POOLS, ids=[str(p[1:]) for p in POOLS])
def test_max_pool_matches_flax_values_and_gradients_with_ties(shape, window, strides, padding):
    # Half-integers after a ReLU: many windows hold tied maxima (zeros and equal values); the
    # gradient must go to the same (first) one as select-and-scatter's.
    x = jnp.maximum(jnp.round(jax.random.normal(jax.random.PRNGKey(0), shape) * 2.0) / 2.0, 0.0)
    reference = nn.max_pool(x, window, strides, padding)
    np.testing.assert_array_equal(max_pool(x, window, strides, padding), reference)
    cotangent = jax.random.normal(jax.random.PRNGKey(1), reference.shape)
    g_ours = jax.grad(lambda x: jnp.vdot(max_pool(x, window, strides, padding), cotangent))(x)
    g_ref = jax.grad(lambda x: jnp.vdot(nn.max_pool(x, window, strides, padding), cotangent))(x)
    np.testing.assert_allclose(g_ours, g_ref, rtol=1e-6, atol=1e-6)
    assert int(jnp.sum(g_ours != 0)) > 0


@pytest.mark.parametrize("norm", [BatchNorm, layers.BatchNorm], ids=["cpu_ops", "plain"])
def test_batch_norm_train_output_is_accurate_on_a_large_mean(norm):
    # torch's BatchNorm2d is within 1e-5 of the exact value here; a one-pass E[x^2] - E[x]^2 in
    # float32 is 2.4e-4 away (four digits of the variance cancel against 100^2).
    x = 100.0 + np.random.default_rng(0).standard_normal((16, 7, 7, 8))
    mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
    exact = (x - mean) / np.sqrt(var + 1e-5)
    module = norm(use_running_average=False)
    variables = module.init(jax.random.PRNGKey(0), jnp.asarray(x, jnp.float32))
    y, updates = module.apply(variables, jnp.asarray(x, jnp.float32), mutable=["batch_stats"])
    assert np.max(np.abs(np.asarray(y, np.float64) - exact)) < 2e-5
    n = x.size // x.shape[-1]  # the running variance averages the unbiased batch variance
    np.testing.assert_allclose(updates["batch_stats"]["var"], 0.9 + 0.1 * var * n / (n - 1), rtol=1e-5)


def test_batch_norm_gradients_match_plain_on_a_large_mean():
    x = 100.0 + jax.random.normal(jax.random.PRNGKey(0), (8, 5, 5, 4))
    cotangent = jax.random.normal(jax.random.PRNGKey(1), x.shape)
    variables = layers.BatchNorm().init(jax.random.PRNGKey(2), x, use_running_average=False)

    def grads(module):
        def loss(params, x):
            y, _ = module.apply({**variables, "params": params}, x, use_running_average=False, mutable=True)
            return jnp.vdot(y, cotangent)

        return jax.grad(loss, (0, 1))(variables["params"], x)

    _close(grads(BatchNorm()), grads(layers.BatchNorm()), tol=2e-3)


# The custom differentiation rules of cpu_ops.
CPU_RULES = {v.__name__ for v in vars(cpu_ops).values() if isinstance(v, jax.custom_jvp | jax.custom_vjp)}
JAXCNN = str(pathlib.Path(cpu_ops.__file__).parent)


def _custom_calls(jaxpr) -> list[str]:
    """Where the function of every custom_jvp/custom_vjp call in a jaxpr (sub-jaxprs included) is
    defined: "name at file:line"."""
    found = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name.startswith(("custom_jvp", "custom_vjp")):
            found.append(eqn.params["call_jaxpr"].jaxpr.debug_info.func_src_info)
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            found += _custom_calls(sub)
    return found


def _train_step_jaxprs(model, shape):
    """The jaxprs of a train-mode loss and of its gradient."""
    x = jnp.ones(shape)
    variables = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), x, train=False))

    def loss(params, batch_stats):
        logits, _ = model.apply(
            {"params": params, "batch_stats": batch_stats}, x, train=True, mutable=["batch_stats"],
            rngs={"dropout": jax.random.PRNGKey(1)},
        )  # fmt: skip
        return jnp.mean(logits)

    args = variables["params"], variables["batch_stats"]
    return jax.make_jaxpr(loss)(*args).jaxpr, jax.make_jaxpr(jax.grad(loss))(*args).jaxpr


# conv (1x1, k x k with chunked kernel gradients, depthwise), BatchNorm, ReLU and the stem max-pool
INJECTED = [
    ("resnet18", (2, 32, 32, 3), dict(stage_sizes=(1, 1, 1, 1))),
    ("mobilenet_v1", (2, 32, 32, 3), {}),
]


@pytest.mark.parametrize("name, shape, overrides", INJECTED, ids=[c[0] for c in INJECTED])
def test_a_plain_build_has_no_jaxcnn_rules_and_auto_on_cpu_has_them(name, shape, overrides):
    for jaxpr in _train_step_jaxprs(registry.create_model(name, cpu_kernels="off", **overrides), shape):
        plain = _custom_calls(jaxpr)
        assert plain and not [c for c in plain if JAXCNN in c], plain  # jax.nn.relu's own custom_jvp only
    forward, grad = _train_step_jaxprs(registry.create_model(name, **overrides), shape)
    rules = {c.split(" at ")[0] for c in _custom_calls(forward) + _custom_calls(grad) if JAXCNN in c}
    expected = {"relu_from_output", "_batch_norm_train", "_pointwise"}
    assert expected | ({"_max_pool"} if name.startswith("resnet") else set()) <= rules <= CPU_RULES


def test_injection_replaces_only_plain_default_parts():
    assert jax.default_backend() == "cpu"
    model = registry.create_model("resnet18")
    assert (model.conv, model.norm, model.act, model.pool) == (
        cpu_ops.Conv, cpu_ops.BatchNorm, cpu_ops.relu_from_output, cpu_ops.max_pool,
    )  # fmt: skip
    assert registry.create_model("resnet18", cpu_kernels="on").norm is cpu_ops.BatchNorm
    plain = registry.create_model("resnet18", cpu_kernels="off")
    assert (plain.conv, plain.norm, plain.act, plain.pool) == (
        nn.Conv,
        layers.BatchNorm,
        nn.relu,
        nn.max_pool,
    )
    # ReLU6 and leaky ReLU are no ReLU: kept; a part passed explicitly is kept too.
    assert registry.create_model("mobilenet_v2").act is nn.relu6
    assert registry.create_model("darknet19").act.func is nn.leaky_relu
    assert registry.create_model("resnet18", act=nn.gelu).act is nn.gelu
    assert registry.create_model("lenet5").conv is cpu_ops.Conv


@pytest.mark.parametrize("value", ["yes", True, None, "OFF"])
def test_bad_cpu_kernels_is_a_one_line_error(value):
    with pytest.raises(ValueError, match=r"cpu_kernels must be one of \('auto', 'on', 'off'\)") as error:
        registry.create_model("lenet5", cpu_kernels=value)
    assert "\n" not in str(error.value)


def test_models_and_layers_define_no_custom_rules_or_backend_checks():
    root = pathlib.Path(cpu_ops.__file__).parent
    files = [root / "layers.py", *sorted((root / "models").glob("*.py"))]
    assert len(files) > 5
    for path in files:
        text = path.read_text()
        for word in ("custom_vjp", "custom_jvp", "default_backend"):
            assert word not in text, f"{path.name} mentions {word}"
