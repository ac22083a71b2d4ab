"""Inputs a model cannot take are one line before compiling, not a trace-time traceback."""

import logging

import jax
import jax.numpy as jnp
import pytest

from jaxcnn import checkpoint, config_lib, preflight, registry
from jaxcnn.preflight import check_input_size
from jaxcnn.train import train_and_evaluate


@pytest.mark.parametrize(
    "name,size,channels,needs",
    [("lenet5", 28, 1, 32), ("googlenet", 16, 3, None)],  # a ZeroDivisionError; the model's own ValueError
)
def test_too_small_an_input_names_the_model_and_the_smallest_size(name, size, channels, needs):
    model = registry.create_model(name, num_classes=10)
    with pytest.raises(ValueError) as e:
        check_input_size(model, name, size, channels)
    message = str(e.value)
    assert message.startswith(f"{name} needs at least ") and f"got config.input.image_size={size}" in message
    smallest = int(message.split("needs at least ")[1].split("x")[0])
    assert needs is None or smallest == needs
    check_input_size(model, name, smallest, channels)  # the size it names works
    with pytest.raises(ValueError):
        check_input_size(model, name, smallest - 1, channels)


def test_an_input_it_takes_passes():
    check_input_size(registry.create_model("mnist_convnet", num_classes=10), "mnist_convnet", 28, 1)


def test_the_trainer_checks_before_compiling(mnist_split, tmp_path, root):
    config = config_lib.load_config(str(root / "configs" / "lenet5_mnist.py:smoke"))
    config.input.image_size = 28
    with pytest.raises(
        ValueError, match="lenet5 needs at least 32x32 inputs, got config.input.image_size=28"
    ):
        train_and_evaluate(config, str(tmp_path))
    assert not (tmp_path / "checkpoints").exists()


def _count_compiles(caplog, name):
    return sum(f"Finished XLA compilation of jit({name})" in r.getMessage() for r in caplog.records)


def test_a_step_that_does_not_fit_is_one_line_before_the_first_step(mnist_split, tmp_path, root, monkeypatch):
    # $JAXCNN_MEMORY_LIMIT_BYTES stands in for a small device: 100 MiB of "host RAM" (the state: 50).
    monkeypatch.setenv(preflight.MEMORY_LIMIT_ENV, str(100 * 2**20))
    config = config_lib.load_config(str(root / "configs" / "mnist_convnet.py:smoke"))
    config.batch_size = 256
    with pytest.raises(MemoryError) as e:
        train_and_evaluate(config, str(tmp_path))
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith("the train step needs about ") and "batch_size=256" in message
    assert "but 100.0 MiB is available ($JAXCNN_MEMORY_LIMIT_BYTES)" in message
    fits = int(message.split("config.batch_size=")[1].split()[0])
    k = int(message.split("config.grad_accum_steps=")[1].split()[0])
    assert 0 < fits < 256 and fits % 2 == 0 and 256 % k == 0 and 256 // k <= fits
    assert "config.remat='convs'" in message
    assert not checkpoint.has_checkpoint(str(tmp_path))
    # The batch size it names fits.
    monkeypatch.setenv(preflight.MEMORY_LIMIT_ENV, str(100 * 2**20))
    config.batch_size, config.num_train_steps = fits, 2
    config.eval_every_steps = config.checkpoint_every_steps = config.log_every_steps = 2
    train_and_evaluate(config, str(tmp_path / "fits"))


def test_the_preflight_compilation_is_the_one_the_trainer_runs(mnist_split, tmp_path, root, caplog):
    config = config_lib.load_config(str(root / "configs" / "lenet5_mnist.py:smoke"))
    config.num_train_steps = config.eval_every_steps = config.checkpoint_every_steps = 4
    config.log_every_steps = 2
    jax.config.update("jax_log_compiles", True)
    try:
        with caplog.at_level(logging.WARNING):
            train_and_evaluate(config, str(tmp_path))
    finally:
        jax.config.update("jax_log_compiles", False)
    assert _count_compiles(caplog, "train_step") == 1


def test_the_memory_analysis_adds_up():
    f = jax.jit(lambda a, b: (a @ b, jnp.tanh(a @ b @ b).sum()), donate_argnums=0)
    x = jnp.ones((256, 256))
    parts = preflight.step_memory(f.lower(x, x).compile())
    assert parts["arguments"] == 2 * x.nbytes
    assert parts["peak"] == parts["arguments"] + parts["outputs"] + parts["temporaries"] - parts["aliased"]
