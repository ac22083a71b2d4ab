"""LeNet-5 on MNIST: LeCun et al. 1998, Fig. 2 network, Table/Fig. 14 result (0.95% test error).

Launch:
    python -m jaxcnn.main --config=configs/lenet5_mnist.py --workdir=runs/lenet5_mnist
    python -m jaxcnn.main --config=configs/lenet5_mnist.py:smoke --workdir=/tmp/smoke

The paper trains with stochastic diagonal Levenberg-Marquardt for 20 passes; jaxcnn uses the
project's SGD with momentum 0.9 and a cosine schedule (a deliberate, documented deviation).
"""

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.model = ml_collections.ConfigDict({"name": "lenet5"})

    config.dataset = ml_collections.ConfigDict()
    config.dataset.name = "mnist"
    config.dataset.data_dir = None  # TFDS data dir; None = $TFDS_DATA_DIR or ~/tensorflow_datasets
    config.dataset.train_split = "train"
    config.dataset.eval_split = "test"

    config.input = ml_collections.ConfigDict()
    config.input.image_size = 32  # the 28x28 digits padded into LeNet's 32x32 field
    config.input.normalize = "lecun"  # background -0.1, ink 1.175
    config.input.shuffle_buffer = 60_000  # the whole split: a uniform shuffle each epoch
    config.input.cache_max_examples = 100_000  # keep decoded splits up to this size in memory

    config.batch_size = 32
    config.eval_batch_size = 1000
    config.num_epochs = 20  # the paper's 20 passes
    config.num_train_steps = -1  # > 0 overrides num_epochs

    config.optimizer = ml_collections.ConfigDict()
    config.optimizer.name = "sgd"
    config.optimizer.base_learning_rate = 0.01  # lr = base * batch_size / reference_batch_size
    config.optimizer.reference_batch_size = 32
    config.optimizer.momentum = 0.9
    config.optimizer.nesterov = False
    config.optimizer.weight_decay = 0.0
    config.optimizer.decay_all = False  # True: decay biases and coefficients too

    config.schedule = ml_collections.ConfigDict()
    config.schedule.name = "cosine"
    config.schedule.warmup_epochs = 0.0
    config.schedule.boundaries_epochs = ()  # for "step": epochs where lr *= decay_factor
    config.schedule.decay_factor = 0.1

    config.log_every_steps = 200
    config.eval_every_steps = 1875  # once per epoch at batch 32
    config.checkpoint_every_steps = 1875
    config.checkpoint = ml_collections.ConfigDict({"keep": 3})
    config.seed = 0

    if arg == "smoke":  # seconds on a CPU: the same recipe, a few steps
        config.num_train_steps = 60
        config.log_every_steps = 20
        config.eval_every_steps = 60
        config.checkpoint_every_steps = 30
    elif arg is not None:
        raise ValueError(f"unknown config argument {arg!r}; allowed: smoke")
    return config
