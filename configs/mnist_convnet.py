"""The small modern ConvNet on MNIST: 5x5 conv 32, pool, 5x5 conv 64, pool, dropout, fc 1000, fc 10.

No single paper: the small ConvNet that MNIST tutorials use as the modern baseline (two 5x5
convolutions with 32 and 64 filters, each followed by 2x2 max-pooling, then dropout and a 1000-unit
fully connected layer), reported to reach about 99% test accuracy in a few epochs. This recipe
targets <= 0.9% test error in 6 epochs; LeNet-5 (configs/lenet5_mnist.py) is the paper baseline.

Launch:
    python -m jaxcnn.main --config=configs/mnist_convnet.py --workdir=runs/mnist_convnet
"""

from configs.base import apply_variant, base_config

TABLE = {  # the README's row (scripts/recipes_table.py): no paper, no reported errors
    "paper": "none (the tutorials' small ConvNet)",
    "rows": "",
    "errors": (),
}


def get_config(arg=None):
    config = base_config()
    config.model.name = "mnist_convnet"
    config.dataset.name = "mnist"
    config.input.image_size = 28
    config.input.normalize = "standardize"  # MNIST mean 0.1307, std 0.3081

    config.batch_size = 64
    config.num_epochs = 6
    config.optimizer.base_learning_rate = 0.02
    config.optimizer.reference_batch_size = 64  # lr = 0.02 * batch_size / 64
    config.optimizer.weight_decay = 5e-4

    config.log_every_steps = 100
    config.eval_every_epochs = 1
    config.checkpoint_every_epochs = 1
    return apply_variant(config, arg)
