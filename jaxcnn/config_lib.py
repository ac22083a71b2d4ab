"""Config checks at the boundary and the one place where durations become step counts."""

from __future__ import annotations

import importlib.util
import os

import jax
import ml_collections

from jaxcnn import losses, optim, registry
from jaxcnn.data import input as input_lib


def base_config() -> ml_collections.ConfigDict:
    """Every key the trainer reads, with neutral defaults; configs/*.py set what their recipe needs."""
    c = ml_collections.ConfigDict()
    c.model = ml_collections.ConfigDict({"name": ""})  # other keys: create_model overrides

    c.dataset = ml_collections.ConfigDict()
    c.dataset.name = ""
    c.dataset.data_dir = ""  # TFDS data dir; "" = $TFDS_DATA_DIR or ~/tensorflow_datasets
    c.dataset.train_split = "train"
    c.dataset.eval_split = "test"

    c.input = ml_collections.ConfigDict()
    c.input.image_size = 0
    c.input.normalize = "standardize"  # or "lecun" (LeNet's -0.1 / 1.175), "unit" ([0, 1])
    c.input.shuffle_buffer = 60_000  # the whole of MNIST: a uniform shuffle every epoch
    c.input.cache_max_examples = 100_000  # splits up to this size stay decoded in memory

    c.batch_size = 0
    c.eval_batch_size = 1000
    c.num_epochs = 0
    c.num_train_steps = -1  # > 0 overrides num_epochs

    c.loss = ml_collections.ConfigDict()
    c.loss.name = "softmax_cross_entropy"  # or "lecun_map" (LeNet-5's RBF criterion, eq. 9)
    c.loss.map_j = 0.0  # lecun_map's constant j: the rubbish class scores exp(-j)
    c.loss.aux_weight = 0.3  # auxiliary classifiers' loss weight (GoogLeNet Sec. 5)

    c.optimizer = ml_collections.ConfigDict()
    c.optimizer.name = "sgd"
    c.optimizer.base_learning_rate = 0.0  # lr = base * batch_size / reference_batch_size
    c.optimizer.reference_batch_size = 256
    c.optimizer.momentum = 0.9
    c.optimizer.nesterov = False
    c.optimizer.weight_decay = 0.0
    c.optimizer.grad_clip_norm = 0.0  # > 0: clip the gradient's global norm first
    c.optimizer.decay_all = False  # True: decay biases and norm scales too, not only kernels

    c.schedule = ml_collections.ConfigDict()
    c.schedule.name = "cosine"  # or "constant", "step"
    c.schedule.warmup_epochs = 0.0
    c.schedule.boundaries_epochs = ()  # "step": epochs where lr *= decay_factor
    c.schedule.decay_factor = 0.1

    c.log_every_steps = 100
    c.eval_every_steps = 1000
    c.checkpoint_every_steps = 1000
    c.checkpoint = ml_collections.ConfigDict({"keep": 3})
    c.seed = 0
    return c


def load_config(spec: str) -> ml_collections.ConfigDict:
    """Loads "configs/NAME.py[:ARG]" the way --config does: get_config(ARG) of that file."""
    path, _, arg = spec.partition(":")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path!r} does not exist")
    module_spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.get_config(arg or None)


def apply_variant(config, arg: str | None) -> ml_collections.ConfigDict:
    """Applies a config file's argument: None (the full recipe) or "smoke" (the same recipe for
    a few steps, seconds on a CPU; what tests and notebooks run)."""
    if arg == "smoke":
        config.num_train_steps = 60
        config.log_every_steps = 20
        config.eval_every_steps = 60
        config.checkpoint_every_steps = 30
    elif arg is not None:
        raise ValueError(f"unknown config argument {arg!r}; allowed: smoke")
    return config


def validate(config) -> None:
    """Raises ValueError naming the first bad value and what is allowed; cheap, before compiling."""

    def positive(key, value, kind=(int,)):
        if isinstance(value, bool) or not isinstance(value, kind) or value <= 0:
            raise ValueError(f"config.{key} must be a positive number, got {value!r}")

    registry.model_info(config.model.name)  # raises with the list of known models
    if config.dataset.name not in input_lib.SUPPORTED:
        raise ValueError(
            f"config.dataset.name={config.dataset.name!r} is not supported; "
            f"supported: {', '.join(input_lib.SUPPORTED)}"
        )
    if config.input.normalize not in input_lib.NORMALIZATIONS:
        raise ValueError(
            f"config.input.normalize={config.input.normalize!r}; allowed: {input_lib.NORMALIZATIONS}"
        )
    for key in ("batch_size", "eval_batch_size"):
        positive(key, config[key])
        devices = jax.device_count()
        if config[key] % devices:
            raise ValueError(
                f"config.{key}={config[key]} does not divide over {devices} devices; "
                f"use a multiple of {devices}"
            )
    for key in ("eval_every_steps", "checkpoint_every_steps", "log_every_steps"):
        positive(key, config[key])
    if not isinstance(config.num_train_steps, int) or isinstance(config.num_train_steps, bool):
        raise ValueError(f"config.num_train_steps must be an int, got {config.num_train_steps!r}")
    if config.num_train_steps <= 0:
        positive("num_epochs", config.num_epochs, (int, float))
    positive("optimizer.base_learning_rate", config.optimizer.base_learning_rate, (int, float))
    if config.optimizer.name not in optim.OPTIMIZERS:
        raise ValueError(f"config.optimizer.name={config.optimizer.name!r}; known: {optim.OPTIMIZERS}")
    if config.loss.name not in losses.LOSSES:
        raise ValueError(f"config.loss.name={config.loss.name!r}; known: {losses.LOSSES}")
    if config.schedule.name not in optim.SCHEDULES:
        raise ValueError(f"config.schedule.name={config.schedule.name!r}; known: {optim.SCHEDULES}")
    if config.optimizer.weight_decay < 0:
        raise ValueError(f"config.optimizer.weight_decay must be >= 0, got {config.optimizer.weight_decay!r}")


def num_train_steps(config, num_train_examples: int) -> tuple[int, int]:
    """Returns (steps_per_epoch, total steps): config.num_train_steps if > 0, else epochs."""
    steps_per_epoch = num_train_examples // config.batch_size
    if steps_per_epoch == 0:
        raise ValueError(
            f"config.batch_size={config.batch_size} exceeds the {num_train_examples} training examples"
        )
    if config.num_train_steps > 0:
        return steps_per_epoch, config.num_train_steps
    return steps_per_epoch, int(round(config.num_epochs * steps_per_epoch))
