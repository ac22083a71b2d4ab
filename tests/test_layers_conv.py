"""layers.Conv computes 1x1 convolutions as matrix products: the same numbers as flax's nn.Conv."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxcnn.layers import Conv

CASES = [
    dict(features=8, kernel_size=(1, 1)),
    dict(features=8, kernel_size=(1, 1), strides=(2, 2)),
    dict(features=8, kernel_size=(1, 1), padding="VALID", use_bias=False),
    dict(features=8, kernel_size=(1, 1), strides=2, padding=[(0, 0), (0, 0)]),
    dict(features=8, kernel_size=(3, 3), strides=(2, 2)),  # not 1x1: lax's own convolution
    dict(features=8, kernel_size=(1, 1), feature_group_count=2),  # grouped: lax's own convolution
]


@pytest.mark.parametrize("kwargs", CASES, ids=[str(c) for c in CASES])
def test_conv_matches_flax_conv_forward_and_gradients(kwargs):
    x = jax.random.normal(jax.random.PRNGKey(0), (2, 9, 9, 4))
    ours, reference = Conv(**kwargs), nn.Conv(**kwargs)
    params = reference.init(jax.random.PRNGKey(1), x)
    np.testing.assert_allclose(ours.apply(params, x), reference.apply(params, x), rtol=1e-6, atol=1e-6)

    def loss(module):
        return lambda p, x: jnp.sum(jnp.sin(module.apply(p, x)))

    g_ours = jax.grad(loss(ours), argnums=(0, 1))(params, x)
    g_ref = jax.grad(loss(reference), argnums=(0, 1))(params, x)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), g_ours, g_ref)
