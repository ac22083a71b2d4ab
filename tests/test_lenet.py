"""LeNet-5 as in LeCun et al. 1998: Table I connections, trainable subsampling, fixed RBF output."""

import jax
import jax.numpy as jnp
import numpy as np

import jaxcnn
from jaxcnn.models import lenet


def _init(name="lenet5"):
    model = jaxcnn.create_model(name)
    x = jnp.zeros((1, 32, 32, 1))
    return model, model.init(jax.random.PRNGKey(0), x)


def test_parameter_count_by_layer_is_the_papers():
    _, variables = _init()
    counts = {k: sum(p.size for p in jax.tree.leaves(v)) for k, v in variables["params"].items()}
    # Sec. II-B: C1 156, S2 12, C3 1,516, S4 32, C5 48,120, F6 10,164; 60,000 in all.
    assert counts == {"c1": 156, "s2": 12, "c3": 1516, "s4": 32, "c5": 48120, "f6": 10164}


def test_c3_sees_only_the_table_i_maps():
    conv = lenet.PartialConv(lenet.C3_TABLE)
    x = jax.random.normal(jax.random.PRNGKey(0), (1, 14, 14, 6))
    params = conv.init(jax.random.PRNGKey(1), x)
    # d(sum of output map j) / d(input map i) is non-zero exactly where Table I has an X.
    jac = jax.jacobian(lambda x: conv.apply(params, x).sum(axis=(0, 1, 2)))(x)
    touches = np.asarray(jnp.abs(jac).sum(axis=(1, 2, 3)) > 0)  # (16 outputs, 6 inputs)
    expected = np.zeros((16, 6), bool)
    for j, row in enumerate(lenet.C3_TABLE):
        expected[j, list(row)] = True
    np.testing.assert_array_equal(touches, expected)
    assert expected.sum() == 60


def test_subsampling_is_coefficient_times_window_sum_plus_bias():
    sub = lenet.Subsampling()
    x = jax.random.normal(jax.random.PRNGKey(0), (1, 4, 4, 2))
    params = {"params": {"coefficient": jnp.array([2.0, -1.0]), "bias": jnp.array([0.5, 0.0])}}
    y = sub.apply(params, x)
    window_sum = x.reshape(1, 2, 2, 2, 2, 2).sum(axis=(2, 4))
    np.testing.assert_allclose(y, window_sum * jnp.array([2.0, -1.0]) + jnp.array([0.5, 0.0]), rtol=1e-6)


def test_rbf_centres_are_distinct_plus_minus_one_bitmaps():
    centres = lenet.rbf_prototypes()
    assert centres.shape == (10, 84) and set(np.unique(centres)) == {-1.0, 1.0}
    distances = ((centres[:, None] - centres[None]) ** 2).sum(-1)
    assert (distances + np.eye(10) * 1e9).min() >= 4 * 8  # every pair differs in >= 8 pixels


def test_rbf_output_is_minus_squared_distance_to_the_centres():
    model, variables = _init()
    x = jax.random.normal(jax.random.PRNGKey(3), (2, 32, 32, 1))
    f6 = model.apply(variables, x, features_only=True)
    logits = model.apply(variables, x)
    expected = -((f6[:, None, :] - lenet.rbf_prototypes()[None]) ** 2).sum(-1)
    np.testing.assert_allclose(logits, expected, rtol=1e-5)
    assert f6.shape == (2, 84) and np.abs(f6).max() <= 1.7159


def test_initialisation_is_uniform_within_2_4_over_fan_in():
    _, variables = _init()
    c5 = variables["params"]["c5"]["kernel"]
    bound = 2.4 / (5 * 5 * 16)
    assert np.abs(c5).max() <= bound and np.abs(c5).max() > 0.9 * bound
