"""The registry's API and, for every registered model, shape / mode / dtype / parameter count."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcnn


def test_list_models_is_sorted_and_has_the_mnist_nets():
    names = jaxcnn.list_models()
    assert names == sorted(names)
    assert {"lenet5", "lenet5_modern", "mnist_convnet"} <= set(names)


def test_unknown_model_names_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown model 'lenet6'.*lenet5"):
        jaxcnn.create_model("lenet6")


def test_unknown_override_is_rejected():
    with pytest.raises(ValueError, match="unknown override.*'widht'"):
        jaxcnn.create_model("mnist_convnet", widht=3)


def test_bad_num_classes_is_rejected():
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        jaxcnn.create_model("mnist_convnet", num_classes=0)


def test_overrides_reach_the_module():
    model = jaxcnn.create_model("mnist_convnet", num_classes=7, dropout_rate=0.25)
    assert (model.num_classes, model.dropout_rate) == (7, 0.25)


@pytest.mark.parametrize("name", jaxcnn.list_models())
def test_model_shapes_modes_dtypes_and_count(name):
    info = jaxcnn.model_info(name)
    assert info.paper and info.input_size and info.num_params > 0
    x = jax.random.normal(jax.random.PRNGKey(0), (3, *info.input_size))
    model = jaxcnn.create_model(name)
    variables = model.init(jax.random.PRNGKey(1), x, train=False)
    count = sum(p.size for p in jax.tree.leaves(variables["params"]))
    assert count == info.num_params

    eval_out = model.apply(variables, x, train=False)
    train_out = model.apply(variables, x, train=True, rngs={"dropout": jax.random.PRNGKey(2)})
    for out in (eval_out, train_out):
        assert out.shape == (3, info.num_classes)
        assert np.all(np.isfinite(out))

    features = model.apply(variables, x, train=False, features_only=True)
    assert features.ndim == 2 and features.shape[0] == 3

    bf16 = jaxcnn.create_model(name, dtype=jnp.bfloat16)
    out16 = bf16.apply(variables, x, train=False)
    assert out16.dtype in (jnp.bfloat16, jnp.float32)  # logits may be kept in float32
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables["params"]))
    np.testing.assert_allclose(np.asarray(out16, np.float32), eval_out, rtol=0.1, atol=2.0)
