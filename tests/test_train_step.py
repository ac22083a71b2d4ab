"""The train step's options, each against its definition: bfloat16, remat, gradient accumulation,
EMA, label smoothing; and the data position (a resume with another batch size is refused).
The checkpoint's best-k set is in test_checkpoint.py."""

import contextlib
import io
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from helpers import mnist_config
from jax.ad_checkpoint import print_saved_residuals

from jaxcnn import build, losses, sharding
from jaxcnn import train as train_lib
from jaxcnn.train import train_and_evaluate, train_step


def _setup(config, size=32, channels=1, num_classes=10):
    mesh = sharding.create_mesh(config.mesh.model)
    built = build.build(
        config,
        num_classes=num_classes,
        image_shape=(size, size, channels),
        num_train_examples=100 * config.batch_size,  # 100 steps per epoch
        mesh=mesh,
    )
    model, tx, state = built.model, built.tx, built.state
    rng = np.random.default_rng(0)
    batch = {
        "image": rng.normal(size=(config.batch_size, size, size, channels)).astype(np.float32),
        "label": rng.integers(0, num_classes, config.batch_size).astype(np.int32),
    }
    step = jax.jit(lambda s, b: train_step(model, tx, config, s, b))
    return model, state, sharding.shard_batch(batch, mesh), step


def _grads(model, config, state, batch):
    def loss_fn(params):
        variables = (
            {"params": params, "batch_stats": state.batch_stats} if state.batch_stats else {"params": params}
        )
        logits, _ = model.apply(variables, batch["image"], train=True, mutable=["batch_stats"])
        return losses.classification_loss(logits, batch["label"], config.loss).mean()

    return jax.grad(loss_fn)(state.params)


def test_bfloat16_computes_in_bf16_and_keeps_float32_state():
    f32 = mnist_config()
    bf16 = mnist_config(precision="bfloat16")
    _, state32, batch, step32 = _setup(f32)
    model16, state16, _, step16 = _setup(bf16)
    hidden = model16.apply(
        {"params": state16.params}, batch["image"], train=False, capture_intermediates=True
    )
    dtypes = {leaf.dtype for leaf in jax.tree.leaves(hidden[1]["intermediates"])}
    assert jnp.dtype(jnp.bfloat16) in dtypes  # the activations are bf16 ...
    new16, m16 = step16(state16, batch)
    new32, m32 = step32(state32, batch)
    for tree in (new16.params, new16.opt_state):  # ... the parameters and optimizer state are not
        assert {x.dtype for x in jax.tree.leaves(tree) if x.ndim} == {jnp.dtype(jnp.float32)}
    assert float(m16["loss"]) == pytest.approx(float(m32["loss"]), rel=2e-2)
    assert float(m16["loss"]) != float(m32["loss"])  # it really computed in another precision


def _saved_activations(fn, params) -> int:
    """Elements of the activations `fn`'s backward pass keeps (jax's own account; parameters excluded)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        print_saved_residuals(fn, params)
    shapes = [
        re.match(r"\s*\w+\[([\d,]*)\]", ln) for ln in out.getvalue().splitlines() if "argument" not in ln
    ]
    return sum(int(np.prod([int(d) for d in m.group(1).split(",") if d])) for m in shapes if m)


def test_remat_gives_the_same_step_and_keeps_fewer_activations():
    plain, remat = mnist_config("resnet18"), mnist_config("resnet18", remat="convs")
    model, state, batch, step_plain = _setup(plain, size=32, channels=3)
    _, _, _, step_remat = _setup(remat, size=32, channels=3)

    def forward(params):
        variables = {"params": params, "batch_stats": state.batch_stats}
        return model.apply(variables, batch["image"], train=True, mutable=["batch_stats"])[0].sum()

    kept = _saved_activations(forward, state.params)
    kept_remat = _saved_activations(jax.checkpoint(forward, policy=train_lib.save_convs), state.params)
    assert kept_remat < 0.6 * kept, (kept_remat, kept)  # conv outputs only; BN and ReLU recomputed
    a, _ = step_plain(jax.tree.map(jnp.copy, state), batch)
    b, _ = step_remat(state, batch)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6), a.params, b.params)


def test_gradient_accumulation_equals_the_full_batch():
    # lenet5_modern has no BatchNorm or dropout, so k micro-batches give the full batch's gradient.
    one, two = mnist_config(), mnist_config(grad_accum_steps=2)
    _, state, batch, step_one = _setup(one)
    _, _, _, step_two = _setup(two)
    a, ma = step_one(jax.tree.map(jnp.copy, state), batch)
    b, mb = step_two(state, batch)
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7), a.params, b.params)
    assert float(ma["loss"]) == pytest.approx(float(mb["loss"]), rel=1e-6)


def test_ema_follows_its_recurrence():
    config = mnist_config(ema_decay=0.9)
    _, state, batch, step = _setup(config)
    expected = state.params
    for _ in range(3):
        state, _ = step(state, batch)
        expected = jax.tree.map(lambda e, p: 0.9 * e + 0.1 * p, expected, state.params)
    jax.tree.map(
        lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7), state.ema_params, expected
    )
    assert not np.allclose(jax.tree.leaves(state.ema_params)[0], jax.tree.leaves(state.params)[0])


def test_label_smoothing_is_cross_entropy_with_smoothed_targets():
    config = mnist_config(**{"loss.label_smoothing": 0.1})
    logits = jnp.asarray(np.random.default_rng(1).normal(size=(4, 10)), jnp.float32)
    labels = jnp.asarray([0, 3, 9, 3])
    got = losses.classification_loss(logits, labels, config.loss)
    target = 0.9 * jax.nn.one_hot(labels, 10) + 0.01
    want = -(target * jax.nn.log_softmax(logits)).sum(-1)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    plain = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    assert not np.allclose(got, plain)


def test_resuming_with_another_batch_size_is_refused(mnist_split, tmp_path):
    config = mnist_config(
        num_train_steps=10, eval_every_steps=10, checkpoint_every_steps=10, log_every_steps=10
    )
    config.dataset.train_split = "test"
    train_and_evaluate(config, str(tmp_path))
    config.batch_size, config.num_train_steps = 16, 20
    # Allowed past the manifest (jaxcnn/run_dir.py), the change still cannot replay the same examples.
    config.resume.allow_changes = "batch_size,num_train_steps"
    with pytest.raises(ValueError, match="written with batch_size=8 but this run has batch_size=16"):
        train_and_evaluate(config, str(tmp_path))


def test_a_model_axis_splits_big_kernels_and_changes_no_number():
    data, model = mnist_config("resnet18"), mnist_config("resnet18", **{"mesh.model": 2})
    _, state_d, batch_d, step_d = _setup(data, size=32, channels=3)
    _, state_m, batch_m, step_m = _setup(model, size=32, channels=3)
    kernel = state_m.params["layer4_1"]["conv2"]["kernel"]  # 3x3x512x512: split over "model"
    assert kernel.sharding.shard_shape(kernel.shape) == (3, 3, 512, 256)
    momentum = jax.tree.leaves(state_m.opt_state)
    assert any(getattr(x, "shape", None) == kernel.shape and x.sharding == kernel.sharding for x in momentum)
    a, ma = step_d(state_d, batch_d)
    b, mb = step_m(state_m, batch_m)
    assert float(ma["loss"]) == pytest.approx(
        float(mb["loss"]), rel=1e-5
    )  # the split kernels sum in another order
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6), a.params, b.params)
