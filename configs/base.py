"""Every key the trainer reads, with neutral defaults; configs/*.py set what their recipe needs.

Data only: this module imports ml_collections and nothing that imports JAX, so loading a recipe is
cheap and each section is checked by the module that consumes it (jaxcnn.train.check_config).
"""

from __future__ import annotations

import ml_collections


def base_config() -> ml_collections.ConfigDict:
    """The full set of keys with neutral defaults (a recipe sets the ones its paper fixes)."""
    c = ml_collections.ConfigDict()
    # "classification" (one label per image) or "segmentation" (a label per pixel: jaxcnn.segmentation)
    c.task = "classification"
    c.model = ml_collections.ConfigDict()
    c.model.name = ""  # other keys are passed to create_model as overrides
    # XLA:CPU's formulations of conv/norm/act: "auto" (on when JAX runs on the CPU), "on", "off".
    c.model.cpu_kernels = "auto"

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
    # vgg_scale_jitter, vgg_s256, vgg_s384, inception_crop, resnet_scale, cifar) plus extra pixel ops, e.g.
    # "rotate(10),shift(0.1),vflip,noise(0.05),blur(1.0),color".
    c.input.train_augment = "none"
    c.input.extra_augment = ""
    c.input.num_shards = 64  # contiguous ranges of a streamed (large) split; a multiple of the processes
    c.input.threads = 0  # tf.data's private thread pool; 0 = TensorFlow's default
    # Bad data in an image folder: "error" stops at start-up on an empty class directory or an eval
    # class that training lacks, and names an unreadable image when it is read; "skip" decodes every
    # image once at start-up and leaves out the unreadable ones and unknown-class eval images (the
    # same ones on every resume), warning with their count and names.
    c.input.on_bad_example = "error"

    c.batch_size = 0
    c.eval_batch_size = 1000
    c.num_epochs = 0
    c.num_train_steps = -1  # > 0 overrides num_epochs

    # Intervals: exactly one of each pair, in epochs or in steps (0 = not set). Epochs become steps
    # once the training split is opened, from the actual batch size (jaxcnn.durations).
    c.log_every_steps = 100
    c.eval_every_epochs = 0.0
    c.eval_every_steps = 0
    c.checkpoint_every_epochs = 0.0
    c.checkpoint_every_steps = 0

    c.loss = ml_collections.ConfigDict()
    c.loss.name = "softmax_cross_entropy"  # or "lecun_map" (LeNet-5's RBF criterion, eq. 9)
    c.loss.map_j = 0.0  # lecun_map's constant j: the rubbish class scores exp(-j)
    c.loss.aux_weight = 0.3  # auxiliary classifiers' loss weight (GoogLeNet Sec. 5)
    c.loss.label_smoothing = 0.0  # e: targets (1 - e) one_hot + e / K (Inception v3 Sec. 7: 0.1)

    c.optimizer = ml_collections.ConfigDict()
    c.optimizer.name = "sgd"  # or "rmsprop" (Inception v3: decay 0.9, epsilon 1.0)
    c.optimizer.base_learning_rate = 0.0  # lr = base * batch_size / reference_batch_size
    c.optimizer.reference_batch_size = 256
    c.optimizer.momentum = 0.9
    c.optimizer.nesterov = False
    c.optimizer.weight_decay = 0.0
    c.optimizer.grad_clip_norm = 0.0  # > 0: clip the gradient's global norm first
    c.optimizer.decay_all = False  # True: decay biases and norm scales too, not only kernels
    c.optimizer.rms_decay = 0.9  # rmsprop: the squared-gradient average's decay
    c.optimizer.rms_eps = 1.0  # rmsprop: epsilon (Inception v3 Sec. 8 uses 1.0)

    c.schedule = ml_collections.ConfigDict()
    c.schedule.name = "cosine"  # or "constant", "step", "exponential", "plateau"
    c.schedule.warmup_epochs = 0.0
    c.schedule.boundaries_epochs = ()  # "step": epochs where lr *= decay_factor
    c.schedule.boundaries_steps = ()  # or the steps (papers that count iterations); one of the two
    c.schedule.decay_factor = 0.1  # "step", "plateau": x0.1; "exponential": e.g. 0.94
    c.schedule.decay_every_epochs = 0.0  # "exponential": lr *= decay_factor every this many epochs
    # "plateau": lr *= decay_factor after `patience` evaluations in a row that do not improve
    # plateau_metric by more than min_delta, at most max_reductions times (jaxcnn.optim).
    c.schedule.patience = 1
    c.schedule.max_reductions = 3
    c.schedule.min_delta = 0.0
    c.schedule.plateau_metric = "eval/top1_error"

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

    c.checkpoint = ml_collections.ConfigDict()
    c.checkpoint.keep = 3  # the last `keep` checkpoints under WORKDIR/checkpoints
    c.checkpoint.keep_best = 0  # > 0: also the best k evaluations under WORKDIR/best
    c.checkpoint.best_metric = "eval/top1_error"  # lower is better
    c.seed = 0

    # Fine-tuning (jaxcnn/finetune.py): initial weights other than a fresh initialisation, at most
    # one source; the classifier is re-initialised when the number of classes differs.
    c.init = ml_collections.ConfigDict()
    c.init.weights = ""  # a tag of jaxcnn.list_pretrained(model.name), or "latest"
    c.init.path = ""  # a torchvision state-dict file for model.name
    c.init.workdir = ""  # another jaxcnn run: its latest params and BatchNorm statistics
    c.init.head = "auto"  # the classifier: "auto" (kept if it fits), "replace" (fresh) or "keep"
    c.init.freeze_backbone = False  # a linear probe: backbone parameters and BN statistics unchanged
    c.init.backbone_lr_multiplier = 1.0  # the backbone's rate = this x the schedule's

    # A resumed run must define the same experiment as its manifest (WORKDIR/config.json,
    # jaxcnn/run_dir.py); list here, comma-separated, the keys it may change (then recorded).
    c.resume = ml_collections.ConfigDict()
    c.resume.allow_changes = ""  # e.g. "num_train_steps" or "optimizer" (a whole group)
    return c


def apply_variant(config: ml_collections.ConfigDict, arg: str | None) -> ml_collections.ConfigDict:
    """Applies a config file's argument: None (the full recipe) or "smoke" (the same recipe for
    a few steps, seconds on a CPU; what tests and notebooks run)."""
    if arg == "smoke":
        config.num_train_steps = 60
        config.log_every_steps = 20
        config.eval_every_epochs, config.eval_every_steps = 0.0, 60
        config.checkpoint_every_epochs, config.checkpoint_every_steps = 0.0, 30
    elif arg is not None:
        raise ValueError(f"unknown config argument {arg!r}; allowed: smoke")
    return config


def parse_arg(arg: str | None, allowed: tuple[str, ...]) -> tuple[set[str], bool]:
    """Splits a recipe's argument "D,S384,smoke" into its tokens (each one of `allowed`) and
    whether "smoke" is among them; ValueError names an unknown token and what is allowed."""
    tokens = [t for t in (arg or "").split(",") if t]
    for token in tokens:
        if token not in (*allowed, "smoke"):
            raise ValueError(f"unknown config argument {token!r}; allowed: {', '.join((*allowed, 'smoke'))}")
    return set(tokens) - {"smoke"}, "smoke" in tokens


def one_of(tokens: set[str], group: tuple[str, ...], default: str) -> str:
    """The token of `group` in `tokens` (default when none); ValueError when two are given."""
    chosen = sorted(tokens & set(group))
    if len(chosen) > 1:
        raise ValueError(
            f"config arguments {', '.join(chosen)} exclude each other; choose one of {', '.join(group)}"
        )
    return chosen[0] if chosen else default


def smoke_imagenet(config, image_size: int) -> None:
    """What an ImageNet recipe's smoke variant shares: tiny inputs and batches, small buffers."""
    config.input.image_size = image_size
    config.batch_size = config.eval_batch_size = 4
    config.input.shuffle_buffer = 64
    config.eval.scales = (image_size, image_size + 16)
    config.mesh.model = 1
