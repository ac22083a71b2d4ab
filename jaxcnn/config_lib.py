"""Config checks at the boundary and the one place where durations become step counts."""

from __future__ import annotations

import importlib.util
import os

import jax
import ml_collections

from jaxcnn import losses, optim, registry
from jaxcnn.data import input as input_lib

PRECISIONS = ("float32", "bfloat16")
REMAT_POLICIES = ("none", "convs")
BEST_METRICS = ("eval/top1_error", "eval/top5_error", "eval/loss")


def base_config() -> ml_collections.ConfigDict:
    """Every key the trainer reads, with neutral defaults; configs/*.py set what their recipe needs."""
    c = ml_collections.ConfigDict()
    c.model = ml_collections.ConfigDict({"name": ""})  # other keys: create_model overrides

    c.dataset = ml_collections.ConfigDict()
    c.dataset.name = ""
    c.dataset.data_dir = ""  # TFDS data dir; "" = $TFDS_DATA_DIR or ~/tensorflow_datasets
    c.dataset.train_split = "train"
    c.dataset.eval_split = "test"
    c.dataset.folder = ""  # dataset "image_folder": the root of root/<split>/<label>/*.jpg

    c.input = ml_collections.ConfigDict()
    c.input.image_size = 0
    c.input.normalize = "standardize"  # or "lecun" (LeNet's -0.1 / 1.175), "unit" ([0, 1])
    c.input.shuffle_buffer = 60_000  # the whole of MNIST: a uniform shuffle every epoch
    c.input.cache_max_examples = 100_000  # splits up to this size stay decoded in memory
    # Training augmentation: a paper's recipe (jaxcnn.data.augment.PRESETS: none, alexnet,
    # vgg_scale_jitter, inception_crop, resnet_scale, cifar) plus extra pixel ops, e.g.
    # "rotate(10),shift(0.1),vflip,noise(0.05),blur(1.0),color".
    c.input.train_augment = "none"
    c.input.extra_augment = ""
    c.input.num_shards = 64  # contiguous ranges of a streamed (large) split; a multiple of the processes
    c.input.threads = 0  # tf.data's private thread pool; 0 = TensorFlow's default

    c.batch_size = 0
    c.eval_batch_size = 1000
    c.num_epochs = 0
    c.num_train_steps = -1  # > 0 overrides num_epochs

    c.loss = ml_collections.ConfigDict()
    c.loss.name = "softmax_cross_entropy"  # or "lecun_map" (LeNet-5's RBF criterion, eq. 9)
    c.loss.map_j = 0.0  # lecun_map's constant j: the rubbish class scores exp(-j)
    c.loss.aux_weight = 0.3  # auxiliary classifiers' loss weight (GoogLeNet Sec. 5)
    c.loss.label_smoothing = 0.0  # e: targets (1 - e) one_hot + e / K (Inception v3 Sec. 7: 0.1)

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

    c.precision = "float32"  # or "bfloat16": bf16 compute, float32 parameters and optimizer state
    c.remat = "none"  # or "convs": keep conv/matmul outputs, recompute the rest in the backward pass
    c.grad_accum_steps = 1  # k > 1: each step averages the gradients of k micro-batches of B / k
    c.ema_decay = 0.0  # > 0: keep an exponential moving average of the weights, evaluated as eval_ema/

    c.mesh = ml_collections.ConfigDict()
    c.mesh.model = 1  # devices on the tensor-parallel "model" axis; the "data" axis takes the rest

    # Multi-host: an empty coordinator_address initialises jax.distributed from the environment when
    # it names a cluster (Cloud TPU, SLURM, JAX_COORDINATOR_ADDRESS); num_processes 0 = one process.
    c.distributed = ml_collections.ConfigDict()
    c.distributed.coordinator_address = ""  # host:port of process 0
    c.distributed.num_processes = 0
    c.distributed.process_id = -1

    c.eval = ml_collections.ConfigDict()
    # Test protocols (jaxcnn.evaluate): "center" always, then any of "ten_crop", "multi_scale",
    # "crops144"; each is logged under its own name (eval/, eval_ten_crop/, ...).
    c.eval.protocols = ("center",)
    c.eval.crop_ratio = 0.875  # center crop S from the image resized to shorter side S / ratio (224/256)
    c.eval.scales = (224, 256, 384, 480, 640)  # multi_scale's shorter sides (VGG/ResNet Table 4)

    c.log_every_steps = 100
    c.eval_every_steps = 1000
    c.checkpoint_every_steps = 1000
    c.checkpoint = ml_collections.ConfigDict()
    c.checkpoint.keep = 3  # the last `keep` checkpoints under WORKDIR/checkpoints
    c.checkpoint.keep_best = 0  # > 0: also the best k evaluations under WORKDIR/best
    c.checkpoint.best_metric = "eval/top1_error"  # lower is better
    c.seed = 0

    # Resuming a workdir: keys whose change from the run's manifest (WORKDIR/config.json) is allowed,
    # e.g. "num_train_steps" or "optimizer,schedule" (a group allows its keys); each allowed change
    # is recorded in the manifest. Other changes to what defines the experiment are refused
    # (jaxcnn/run_dir.py lists the keys that are free to change).
    c.resume = ml_collections.ConfigDict()
    c.resume.allow_changes = ""
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
    input_lib.check_name(config.dataset.name)
    if config.dataset.name == "image_folder" and not config.dataset.folder:
        raise ValueError(
            "config.dataset.name='image_folder' needs config.dataset.folder=/root/of/split/label/*.jpg"
        )
    from jaxcnn.data import augment

    augment.recipe(config.input.train_augment, config.input.extra_augment)  # names the unknown op
    positive("input.image_size", config.input.image_size)
    positive("input.num_shards", config.input.num_shards)
    if config.input.num_shards % jax.process_count():
        raise ValueError(
            f"config.input.num_shards={config.input.num_shards} is not a multiple of the "
            f"{jax.process_count()} processes"
        )
    if not 0.0 < config.eval.crop_ratio <= 1.0:
        raise ValueError(f"config.eval.crop_ratio must be in (0, 1], got {config.eval.crop_ratio!r}")
    for scale in config.eval.scales:
        positive("eval.scales", scale)
    if config.input.normalize not in input_lib.NORMALIZATIONS:
        raise ValueError(
            f"config.input.normalize={config.input.normalize!r}; allowed: {input_lib.NORMALIZATIONS}"
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
    if config.precision not in PRECISIONS:
        raise ValueError(f"config.precision={config.precision!r}; allowed: {', '.join(PRECISIONS)}")
    if config.remat not in REMAT_POLICIES:
        raise ValueError(f"config.remat={config.remat!r}; allowed: {', '.join(REMAT_POLICIES)}")
    if not 0.0 <= config.ema_decay < 1.0:
        raise ValueError(f"config.ema_decay must be in [0, 1), got {config.ema_decay!r}")
    if not 0.0 <= config.loss.label_smoothing < 1.0:
        raise ValueError(
            f"config.loss.label_smoothing must be in [0, 1), got {config.loss.label_smoothing!r}"
        )
    if config.loss.label_smoothing and config.loss.name != "softmax_cross_entropy":
        raise ValueError(f"config.loss.label_smoothing needs softmax_cross_entropy, not {config.loss.name!r}")
    positive("checkpoint.keep", config.checkpoint.keep)
    if config.checkpoint.keep_best < 0:
        raise ValueError(f"config.checkpoint.keep_best must be >= 0, got {config.checkpoint.keep_best!r}")
    if config.checkpoint.keep_best and config.checkpoint.best_metric not in BEST_METRICS:
        raise ValueError(
            f"config.checkpoint.best_metric={config.checkpoint.best_metric!r}; "
            f"allowed: {', '.join(BEST_METRICS)}"
        )
    if not config.eval.protocols or config.eval.protocols[0] != "center":
        raise ValueError(
            f"config.eval.protocols must start with 'center', got {tuple(config.eval.protocols)}"
        )
    for protocol in config.eval.protocols:
        check_protocol(protocol)
    _validate_parallelism(config, positive)


def check_protocol(protocol: str) -> None:
    from jaxcnn.data import views

    if protocol not in views.PROTOCOLS:
        raise ValueError(f"unknown evaluation protocol {protocol!r}; known: {', '.join(views.PROTOCOLS)}")


def _validate_parallelism(config, positive) -> None:
    """The mesh and the batch: model-axis size divides the devices, batches divide the data axis."""
    positive("mesh.model", config.mesh.model)
    positive("grad_accum_steps", config.grad_accum_steps)
    devices = jax.device_count()
    if devices % config.mesh.model:
        raise ValueError(
            f"config.mesh.model={config.mesh.model} does not divide the {devices} devices; "
            f"use one of {[d for d in range(1, devices + 1) if devices % d == 0]}"
        )
    data = devices // config.mesh.model
    for key in ("batch_size", "eval_batch_size"):
        positive(key, config[key])
        if config[key] % data:
            raise ValueError(
                f"config.{key}={config[key]} does not divide over the {data} devices of the data axis "
                f"({devices} devices / mesh.model {config.mesh.model}); use a multiple of {data}"
            )
    if config.batch_size % (config.grad_accum_steps * data):
        raise ValueError(
            f"config.batch_size={config.batch_size} does not split into grad_accum_steps="
            f"{config.grad_accum_steps} micro-batches over {data} devices; use a multiple of "
            f"{config.grad_accum_steps * data}"
        )


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
