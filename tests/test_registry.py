"""The registry's API and, for every registered model, shape / mode / dtype / parameter count."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxcnn
from jaxcnn.models.lenet import LeNet5


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


def test_register_model_rejects_a_taken_name_and_an_unknown_fact():
    with pytest.raises(ValueError, match="'lenet5' is already registered"):
        jaxcnn.register_model("lenet5", constructor=LeNet5, num_params=1, gmacs=1.0)
    with pytest.raises(TypeError, match="paper"):
        jaxcnn.register_model("lenet5_copy", constructor=LeNet5, paper="x", num_params=1, gmacs=1.0)
    assert "lenet5_copy" not in jaxcnn.list_models()


@pytest.mark.parametrize("name", jaxcnn.list_models())
def test_every_model_has_its_facts_as_fields(name):
    info = jaxcnn.model_info(name)
    assert info.name == name
    assert type(jaxcnn.create_model(name)).__module__ == f"jaxcnn.models.{info.family}"
    assert isinstance(info.gmacs, float) and info.gmacs > 0  # summary's count: test_summary
    assert info.reference and info.reference[0].isupper()
    height, width, channels = info.input_size
    assert height == width and channels in (1, 3) and info.num_classes >= 2
    assert all(isinstance(v, float) and 0 < v < 100 for v in info.reported.values())


@pytest.mark.parametrize("name", jaxcnn.list_models())
def test_parameter_count_is_the_registered_fact(name):
    info = jaxcnn.model_info(name)
    assert info.reference and info.num_params > 0
    model = jaxcnn.create_model(name)
    x = jax.ShapeDtypeStruct((1, *info.input_size), jnp.float32)
    shapes = jax.eval_shape(lambda x: model.init(jax.random.PRNGKey(0), x, train=False), x)
    assert sum(p.size for p in jax.tree.leaves(shapes["params"])) == info.num_params


def _forward_cases():
    # Big nets (VGG's 102M-weight fc6, ResNet-200, DenseNet-161 ...) spend most of a forward test
    # compiling and creating parameters; they run with `make test-slow`.
    for name in jaxcnn.list_models():
        slow = jaxcnn.model_info(name).num_params > 15_000_000 or name.startswith("densenet")
        yield pytest.param(name, marks=pytest.mark.slow) if slow else name


@pytest.mark.parametrize("name", list(_forward_cases()))
def test_forward_in_train_and_eval_mode_and_bfloat16(name):
    info = jaxcnn.model_info(name)
    size = min(info.small_input_size, info.input_size[0])
    x = jax.random.normal(jax.random.PRNGKey(0), (2, size, size, info.input_size[-1]))
    model = jaxcnn.create_model(name)
    variables = jax.jit(lambda x: model.init(jax.random.PRNGKey(1), x, train=False))(x)

    eval_out = jax.jit(lambda v, x: model.apply(v, x, train=False))(variables, x)
    train_out, _ = jax.jit(
        lambda v, x: model.apply(
            v, x, train=True, rngs={"dropout": jax.random.PRNGKey(2)}, mutable=["batch_stats"]
        )
    )(variables, x)
    train_logits = train_out[0] if isinstance(train_out, tuple) else train_out
    for out in (eval_out, train_logits):
        assert out.shape[0] == 2 and out.shape[-1] == info.num_classes
        assert np.all(np.isfinite(out))

    features = jax.jit(lambda v, x: model.apply(v, x, features_only=True))(variables, x)
    assert features.shape[0] == 2 and np.all(np.isfinite(features))

    bf16 = jaxcnn.create_model(name, dtype=jnp.bfloat16)
    out16 = jax.jit(lambda v, x: bf16.apply(v, x, train=False))(variables, x)
    assert out16.dtype in (jnp.bfloat16, jnp.float32)  # logits may be kept in float32
    assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(variables["params"]))
    assert np.all(np.isfinite(np.asarray(out16, np.float32)))
