"""Mesh and shardings: data and model axes on the two fake devices give the one-device numbers."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec as P

import jaxcnn
from jaxcnn import sharding

# A VGG of Table 1's shape at reduced widths: 3x3 convs (small kernels, replicated at this
# min_size), fc6 (7*7*16, 64) and fc7 (64, 64) big enough to split, fc8 (64, 10) not divisible.
SMALL_VGG = dict(config=(8, "M", 8, "M", 16, "M", 16, "M", 16, "M"), hidden=(64, 64), num_classes=10)
MIN_SIZE = 1024


def test_create_mesh_axes_and_shapes():
    mesh = sharding.create_mesh()
    assert mesh.axis_names == ("data", "model") and dict(mesh.shape) == {"data": 2, "model": 1}
    assert dict(sharding.create_mesh(model_parallel=2).shape) == {"data": 1, "model": 2}
    assert sorted(d.id for d in mesh.devices.flat) == sorted(d.id for d in jax.devices())


@pytest.mark.parametrize("bad", [3, 0, -2, 1.5, True])
def test_bad_model_parallel_is_rejected(bad):
    with pytest.raises(ValueError, match=rf"model_parallel.*{bad}"):
        sharding.create_mesh(model_parallel=bad)


def test_param_sharding_rule_on_shapes_and_optimizer_state():
    model = jaxcnn.create_model("vgg11", **SMALL_VGG)
    x = jax.ShapeDtypeStruct((1, 32, 32, 3), jnp.float32)
    params = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x), x)["params"]
    state = {
        "step": jax.ShapeDtypeStruct((), jnp.int32),
        "params": params,
        "opt_state": jax.eval_shape(optax.sgd(0.1, momentum=0.9).init, params),
    }
    mesh = sharding.create_mesh(model_parallel=2)
    specs = jax.tree.map(lambda s: s.spec, sharding.param_sharding(state, mesh, min_size=MIN_SIZE))
    split, whole = P(None, "model"), P()
    assert specs["step"] == whole
    assert (specs["params"]["fc6"]["kernel"], specs["params"]["fc7"]["kernel"]) == (split, split)
    assert specs["params"]["fc8"]["kernel"] == whole  # 10 outputs do not divide over 2 devices
    assert specs["params"]["conv1_1"]["kernel"] == whole  # 3*3*3*8 elements < min_size
    assert specs["params"]["fc6"]["bias"] == whole
    # The momentum trace mirrors the parameters, so it is placed like them.
    assert specs["opt_state"][0].trace == specs["params"]
    # With the default min_size only really big kernels split; with a model axis of 1, none.
    assert sharding.param_sharding(params, mesh)["fc6"]["kernel"].spec == whole
    data_mesh = sharding.create_mesh()
    assert set(
        jax.tree.leaves(jax.tree.map(lambda s: s.spec, sharding.param_sharding(state, data_mesh, 0)))
    ) == {whole}


def _loss(model, params, batch):
    logits = model.apply({"params": params}, batch["image"])
    return optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean(), logits


def _batch():
    rng = np.random.default_rng(0)
    return {
        "image": rng.normal(size=(4, 32, 32, 3)).astype(np.float32),
        "label": np.arange(4, dtype=np.int32) % 10,
    }


@pytest.mark.parametrize("model_parallel", [2, 1])
def test_sharded_forward_grad_and_step_equal_one_device(model_parallel):
    model = jaxcnn.create_model("vgg11", **SMALL_VGG)
    batch = _batch()
    params = jax.jit(lambda x: model.init(jax.random.PRNGKey(0), x))(batch["image"])["params"]
    tx = optax.sgd(0.1, momentum=0.9)

    def step(params, opt_state, batch):
        (loss, logits), grads = jax.value_and_grad(lambda p: _loss(model, p, batch), has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, logits, grads

    opt_state = tx.init(params)
    # Twice, so the momentum trace (placed like the params) takes part in the second step.
    expected = jax.jit(step)(*jax.jit(step)(params, opt_state, batch)[:2], batch)

    mesh = sharding.create_mesh(model_parallel=model_parallel)
    state_sharding = sharding.param_sharding((params, opt_state), mesh, min_size=MIN_SIZE)
    placed = jax.device_put((params, opt_state), state_sharding)
    sharded_batch = sharding.shard_batch(batch, mesh)
    assert sharded_batch["image"].sharding.shard_shape((4, 32, 32, 3)) == (4 // mesh.shape["data"], 32, 32, 3)
    fc6 = placed[0]["fc6"]["kernel"]
    assert fc6.sharding.shard_shape(fc6.shape) == (7 * 7 * 16, 64 // model_parallel)

    sharded_step = jax.jit(step, out_shardings=(*state_sharding, None, None, state_sharding[0]))
    first = sharded_step(*placed, sharded_batch)
    got = sharded_step(*first[:2], sharded_batch)
    for name, a, b in zip(("params", "opt_state", "loss", "logits", "grads"), got, expected):
        for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5, err_msg=name)
    # The new parameters come back split like the old (fc6 really lives in halves when model=2).
    new_fc6 = got[0]["fc6"]["kernel"]
    assert new_fc6.sharding.spec == fc6.sharding.spec
    assert {s.data.shape for s in new_fc6.addressable_shards} == {(7 * 7 * 16, 64 // model_parallel)}


def test_steps_over_several_cpu_devices_wait_for_their_results():
    """Two CPU devices: each call returns finished arrays, so the next dispatch cannot overtake it."""
    mesh = sharding.create_mesh()
    step = jax.jit(lambda x: jnp.sum(x) * x, out_shardings=sharding.batch_sharding(mesh))
    x = jax.device_put(jnp.arange(2 * 512.0).reshape(2, 512), sharding.batch_sharding(mesh))
    wrapped = sharding.one_step_at_a_time_on_cpu(step, mesh)
    assert wrapped is not step
    for _ in range(3):
        x = wrapped(x / 1e6)
        assert x.is_ready()
    one_device = jax.sharding.Mesh(np.array(jax.devices()[:1]).reshape(1, 1), ("data", "model"))
    assert sharding.one_step_at_a_time_on_cpu(step, one_device) is step
