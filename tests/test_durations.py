"""Durations: epochs and steps become step counts once, from the actual batch size."""

import re

import pytest
from helpers import ROOT

from jaxcnn import config_lib, durations
from jaxcnn.metric_writer import read_metrics

MNIST_TRAIN = 60_000


def _lenet(**overrides):
    config = config_lib.load_config(str(ROOT / "configs" / "lenet5_mnist.py"))
    config.update_from_flattened_dict(overrides)
    return config


@pytest.mark.parametrize("batch_size", [32, 128])
def test_the_recipe_keeps_its_epoch_boundaries_at_any_batch_size(batch_size):
    steps = durations.resolve(_lenet(batch_size=batch_size), MNIST_TRAIN)
    per_epoch = MNIST_TRAIN // batch_size  # 1875 at the recipe's 32, 468 at 128
    assert steps.steps_per_epoch == per_epoch
    assert steps.num_train_steps == 30 * per_epoch
    assert steps.eval_every == 5 * per_epoch  # the recipe's eval_every_epochs = 5
    assert steps.checkpoint_every == per_epoch  # checkpoint_every_epochs = 1
    assert steps.log_every == 250


def test_steps_forms_and_num_train_steps_are_taken_as_given():
    config = _lenet(num_train_steps=700, eval_every_epochs=0.0, eval_every_steps=300)
    steps = durations.resolve(config, MNIST_TRAIN)
    assert (steps.num_train_steps, steps.eval_every, steps.checkpoint_every) == (700, 300, 1875)


def test_fractional_epochs_round_to_a_step_and_never_to_zero():
    config = _lenet(eval_every_epochs=0.5, checkpoint_every_epochs=1e-6)
    steps = durations.resolve(config, 1000)  # 31 steps of 32 per epoch
    assert (steps.steps_per_epoch, steps.eval_every, steps.checkpoint_every) == (31, 16, 1)


def test_schedule_epochs_become_steps():
    config = _lenet(batch_size=100)
    config.schedule.name, config.schedule.warmup_epochs = "step", 0.5
    config.schedule.boundaries_epochs = (10, 20)
    steps = durations.resolve(config, MNIST_TRAIN)
    assert steps.warmup_steps == 300 and steps.boundaries_steps == (6000, 12000)


def test_schedule_boundaries_in_steps_are_taken_as_given():
    config = _lenet(batch_size=100)
    config.schedule.name, config.schedule.boundaries_steps = "step", (32_000, 48_000)
    assert durations.resolve(config, MNIST_TRAIN).boundaries_steps == (32_000, 48_000)
    config.schedule.boundaries_epochs = (10,)
    with pytest.raises(ValueError, match="set at most one of config.schedule.boundaries_epochs and"):
        durations.resolve(config, MNIST_TRAIN)


BAD = [
    ({"eval_every_steps": 100}, "set exactly one of config.eval_every_epochs and config.eval_every_steps"),
    ({"checkpoint_every_epochs": 0.0}, "set exactly one of config.checkpoint_every_epochs and"),
    ({"eval_every_epochs": -1.0}, "config.eval_every_epochs must be a number > 0 (or 0: not set), got -1.0"),
    ({"log_every_steps": 0}, "config.log_every_steps must be a positive int, got 0"),
    ({"num_epochs": 0}, "config.num_epochs must be > 0 (or num_train_steps > 0), got 0"),
]


@pytest.mark.parametrize("override,message", BAD, ids=[str(b[0]) for b in BAD])
def test_bad_durations_are_one_line(override, message):
    config = _lenet(**override)
    with pytest.raises(ValueError, match=re.escape(message)):
        durations.check_config(config)


def test_a_batch_larger_than_the_split_is_named():
    with pytest.raises(ValueError, match="config.batch_size=32 exceeds the 10 training examples"):
        durations.resolve(_lenet(), 10)


def test_batch_128_evaluates_and_checkpoints_at_the_epoch_boundaries(mnist_split, tmp_path, run_cli):
    # The LeNet-5 recipe as it is (evaluate every 5 epochs, checkpoint every epoch) at batch 128 on
    # 1,280 training images: 10 steps an epoch, so 10 epochs evaluate at 50 and 100.
    run_cli(
        "--config=configs/lenet5_mnist.py",
        f"--workdir={tmp_path}",
        "--config.batch_size=128",
        "--config.num_epochs=10",
        "--config.dataset.train_split=train[:1280]",
        "--config.dataset.eval_split=test[:1000]",
        "--config.checkpoint.keep=20",
    )
    records = read_metrics(str(tmp_path))
    assert [r["step"] for r in records if "eval/top1_error" in r] == [50, 100]
    kept = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert kept == list(range(10, 101, 10))
