"""Inputs a model cannot take are one line before compiling, not a trace-time traceback."""

import pytest

from jaxcnn import config_lib, registry
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
