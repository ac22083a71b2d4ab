"""LeNet-5 on MNIST (LeCun et al. 1998, Fig. 2; 0.95% test error without distortions, Sec. III-C).

Launch:
    python -m jaxcnn.main --config=configs/lenet5_mnist.py --workdir=runs/lenet5_mnist
    python -m jaxcnn.main --config=configs/lenet5_mnist.py:smoke --workdir=/tmp/smoke

The paper trains with stochastic diagonal Levenberg-Marquardt for 20 passes; jaxcnn uses the
project's SGD with momentum 0.9 and a cosine schedule over the same 20 passes.
"""

from jaxcnn.config_lib import apply_variant, base_config


def get_config(arg=None):
    config = base_config()
    config.model.name = "lenet5"
    config.dataset.name = "mnist"
    config.input.image_size = 32  # the 28x28 digits padded into LeNet's 32x32 field
    config.input.normalize = "lecun"  # background -0.1, ink 1.175

    config.batch_size = 32
    config.num_epochs = 20  # the paper's 20 passes
    config.optimizer.base_learning_rate = 0.01
    config.optimizer.reference_batch_size = 32  # lr = 0.01 * batch_size / 32

    steps_per_epoch = 60_000 // config.batch_size
    config.log_every_steps = 250
    config.eval_every_steps = steps_per_epoch * 5
    config.checkpoint_every_steps = steps_per_epoch
    return apply_variant(config, arg)
