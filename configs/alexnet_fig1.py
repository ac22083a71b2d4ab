"""AlexNet Fig. 1 (Krizhevsky, Sutskever & Hinton 2012, Sec. 3.1): ReLU against tanh in a four-layer
convnet, "learning rates chosen independently to make training as fast as possible", "no
regularization of any kind"; ReLU reaches 25% training error on CIFAR-10 six times faster.

Variants (`:ARG`, comma-separated):
  (none)      Fashion-MNIST (what this repository's machines have): 28x28 padded, centred, to 32x32.
  cifar10     the paper's CIFAR-10 (prepared by `python -m jaxcnn.data.prepare cifar10`).
  tanh        the dashed curve: config.model.act = "tanh" (or sweep model.act=relu,tanh).
  smoke       a few steps of the same recipe.

Launch:
    python -m jaxcnn.main --config=configs/alexnet_fig1.py --workdir=runs/fig1_relu
    python -m jaxcnn.sweep --config=configs/alexnet_fig1.py --workdir=runs/fig1 \\
        --sweep=model.act=relu,tanh --seeds=2
(experiments/alexnet_relu_tanh/README.md has the sweep that reproduces the figure and its report.)

The paper gives neither the batch size nor the learning rates of this figure; below are its ImageNet
net's SGD batch 128 and momentum 0.9, a constant learning rate (the figure ends long before any
decay) and the model's flax default initialisation. No augmentation, no weight decay, no dropout.
"""

from configs.base import apply_variant, base_config, parse_arg

VARIANTS = ("cifar10", "tanh")


def get_config(arg=None):
    tokens, smoke = parse_arg(arg, VARIANTS)
    config = base_config()
    config.model.name = "alexnet_fig1"
    config.model.act = "tanh" if "tanh" in tokens else "relu"  # the figure's switch
    config.dataset.name = "cifar10" if "cifar10" in tokens else "fashion_mnist"
    config.input.image_size = 32
    config.input.normalize = "standardize"
    config.input.shuffle_buffer = 60_000

    config.batch_size = 128
    config.optimizer.base_learning_rate = 0.01
    config.optimizer.reference_batch_size = 128  # lr = 0.01 * batch_size / 128
    config.optimizer.momentum = 0.9
    config.schedule.name = "constant"
    config.num_epochs = 20
    # Training error is the figure's y-axis: log it often enough to see when it crosses 25%.
    config.log_every_steps = 10
    config.eval_every_epochs = 5
    config.checkpoint_every_epochs = 1
    if smoke:
        config.batch_size = 32
        config.eval_batch_size = 500
    return apply_variant(config, "smoke" if smoke else None)
