"""AlexNet 2012's two towers on two devices (Krizhevsky et al. 2012, Sec. 3.5 and Fig. 2).

With tower_axis="model" on a (data=1, model=2) mesh each tower's maps and filters and half of each
fc layer live on their own device; activations cross devices only where the paper's GPUs
communicate (into conv3, fc6, fc7 and fc8), and the outputs are the single-device model's.
"""

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec as P

import jaxcnn
from jaxcnn import sharding
from jaxcnn.layers import LocalResponseNorm

# The 2012 geometry (kernels, strides, pads, groups, LRN, pools; 227 -> 55 -> 27 -> 13 -> 6) at
# reduced widths, so the fast tests run in seconds; the full network runs in the slow test.
SMALL = dict(
    layers=((8, 11, 4, 0, 1), "lrn", "pool", (16, 5, 1, 2, 2), "lrn", "pool",
            (24, 3, 1, 1, 1), (24, 3, 1, 1, 2), (16, 3, 1, 1, 2), "pool"),
    hidden=(32, 32), num_classes=10,
)  # fmt: skip
COLLECTIVE = re.compile(
    r"= (\w+)\[([\d,]*)\]\S* (all-gather|all-reduce|reduce-scatter|collective-permute|all-to-all)(-start)?\("
)


def _setup(overrides, batch=2):
    single = jaxcnn.create_model("alexnet_2012", **overrides)
    towers = jaxcnn.create_model("alexnet_2012", tower_axis="model", **overrides)
    x = jax.random.normal(jax.random.PRNGKey(0), (batch, 227, 227, 3))
    variables = jax.jit(lambda x: single.init(jax.random.PRNGKey(1), x))(x)
    mesh = sharding.create_mesh(model_parallel=2)
    # Every kernel split over its output features: each tower's filters on its own device.
    placed = jax.device_put(variables, sharding.param_sharding(variables, mesh, min_size=0))
    return single, towers, x, variables, mesh, placed


def _collectives(hlo: str) -> list[tuple[str, tuple[int, ...]]]:
    """(op, result shape) of every cross-device collective in compiled HLO text."""
    return [(m.group(3), tuple(int(d) for d in m.group(2).split(",") if d)) for m in COLLECTIVE.finditer(hlo)]


def _check_two_towers(overrides, conv3_in, pool5, fc_widths):
    single, towers, x, variables, mesh, placed = _setup(overrides)
    expected = jax.jit(lambda v, x: single.apply(v, x))(variables, x)
    with jax.set_mesh(mesh):
        forward = jax.jit(lambda v, x: towers.apply(v, x))
        logits = forward(placed, x)
        hlo = forward.lower(placed, x).compile().as_text()
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    assert logits.sharding.spec == P(None, "model")  # fc8: 500 classes on each tower in the paper
    # Exactly the paper's exchanges, each an all-gather of the maps/units the next layer reads:
    # pool2 into conv3, pool5 into fc6, fc6 into fc7, fc7 into fc8. None in conv1/2/4/5, LRN, pools.
    batch = x.shape[0]
    assert sorted(_collectives(hlo)) == sorted(
        [
            ("all-gather", (batch, 13, 13, conv3_in)),
            ("all-gather", (batch, 6, 6, pool5)),
            ("all-gather", (batch, fc_widths[0])),
            ("all-gather", (batch, fc_widths[1])),
        ]
    )


def test_two_towers_match_one_device_and_exchange_only_into_conv3_and_the_fc_layers():
    _check_two_towers(SMALL, conv3_in=16, pool5=16, fc_widths=(32, 32))


def test_full_alexnet_2012_two_towers_match_one_device():
    # The real network at the real 227x227 input (about 10 s on a CPU).
    _check_two_towers({}, conv3_in=256, pool5=256, fc_widths=(4096, 4096))


def test_each_towers_parameters_live_on_its_own_device():
    *_, mesh, placed = _setup(SMALL)
    params = placed["params"]
    for name, kernel in ((k, v["kernel"]) for k, v in params.items()):
        assert kernel.sharding.spec == P(*(None,) * (kernel.ndim - 1), "model")
        assert kernel.sharding.shard_shape(kernel.shape) == (*kernel.shape[:-1], kernel.shape[-1] // 2), name
    # conv2's first device holds the first tower's 8 of 16 filters over that tower's 4 input maps.
    shard = params["conv2"]["kernel"].addressable_shards[0]
    assert shard.data.shape == (5, 5, 4, 8) and shard.device == mesh.devices.flat[0]


def test_training_gradients_match_one_device():
    single, towers, x, variables, mesh, placed = _setup(SMALL)
    labels = jnp.arange(x.shape[0]) % SMALL["num_classes"]

    def loss_fn(model):
        def loss(params):
            logits = model.apply({"params": params}, x, train=True, rngs={"dropout": jax.random.PRNGKey(3)})
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        return jax.jit(jax.value_and_grad(loss))

    loss, grads = loss_fn(single)(variables["params"])
    with jax.set_mesh(mesh):
        loss2, grads2 = loss_fn(towers)(placed["params"])
    np.testing.assert_allclose(loss2, loss, rtol=1e-5)
    for path, g in jax.tree_util.tree_leaves_with_path(grads):
        g2 = dict(jax.tree_util.tree_leaves_with_path(grads2))[path]
        np.testing.assert_allclose(g2, g, rtol=1e-4, atol=1e-6, err_msg=jax.tree_util.keystr(path))
    # The kernels' gradients stay on their towers' devices, split like the kernels.
    assert grads2["conv2"]["kernel"].sharding.spec == P(None, None, None, "model")
    assert grads2["fc6"]["kernel"].sharding.spec == P(None, "model")


def test_dense_evaluation_on_two_towers():
    single, towers, _, variables, mesh, placed = _setup(SMALL)
    x = jax.random.normal(jax.random.PRNGKey(2), (2, 291, 259, 3))
    expected = jax.jit(lambda v, x: single.apply(v, x))(variables, x)
    with jax.set_mesh(mesh):
        logits = jax.jit(lambda v, x: towers.apply(v, x))(placed, x)
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


def test_lrn_normalises_within_each_tower():
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 3, 3, 12)) * 40.0
    y = LocalResponseNorm(groups=2).apply({}, x)
    halves = [LocalResponseNorm().apply({}, x[..., :6]), LocalResponseNorm().apply({}, x[..., 6:])]
    np.testing.assert_allclose(y, jnp.concatenate(halves, -1), rtol=1e-6)
    # The maps next to the boundary differ from one LRN across all 12 (the towers do not talk).
    assert np.abs(np.asarray(LocalResponseNorm().apply({}, x)) - np.asarray(y)).max() > 1e-4
    assert jaxcnn.create_model("alexnet_2012").towers == 2


def test_bad_placements_are_clear_errors():
    model = jaxcnn.create_model("alexnet_2012", tower_axis="model", **SMALL)
    x = jnp.zeros((1, 227, 227, 3))
    with pytest.raises(ValueError, match=r"tower_axis='model' needs a mesh in context.*got mesh axes \{\}"):
        jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x), x)
    with jax.set_mesh(sharding.create_mesh(model_parallel=1)):
        with pytest.raises(
            ValueError, match=r"'model' axis has 2 devices; got mesh axes \{'data': 2, 'model': 1\}"
        ):
            jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x), x)
    one_tower = jaxcnn.create_model("alexnet", tower_axis="model")
    with pytest.raises(ValueError, match="needs towers >= 2, got towers=1"):
        jax.eval_shape(lambda x: one_tower.init(jax.random.PRNGKey(0), x), jnp.zeros((1, 224, 224, 3)))
    with pytest.raises(ValueError, match="LRN groups=2 must divide the 5 channels"):
        LocalResponseNorm(groups=2).apply({}, jnp.zeros((1, 5)))
