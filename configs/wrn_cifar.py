"""Wide residual networks on CIFAR (Zagoruyko & Komodakis 2016, "Wide Residual Networks", Sec. 4:
WRN-28-10 on CIFAR-10 and CIFAR-100). The reported test errors are the registry's facts:
`jaxcnn.model_info("wrn28_10").reported` (cifar10/test_error, cifar100/test_error). The dropout
rows of the paper (WRN-28-10 with dropout 0.3 between the convs of each unit) are not registry
facts: the registered network is the one without dropout.

Variants (`:ARG`, comma-separated, e.g. `:cifar100,dropout`):
  cifar10, cifar100   the dataset (default cifar10).
  dropout             dropout 0.3 between the two 3x3 convs of every unit (Sec. 4, "dropout in
                      residual blocks"); the default trains without it.
  smoke               a few steps of the same recipe (what the tests run).

Launch, one host (CIFAR prepared by `python -m jaxcnn.data.prepare cifar10`):
    python -m jaxcnn.main --config=configs/wrn_cifar.py --workdir=runs/wrn28_10
Cloud TPU VM pod slice:
    gcloud compute tpus tpu-vm ssh NAME --zone=ZONE --worker=all \\
        --command="cd jaxcnn && python -m jaxcnn.main \\
        --config=configs/wrn_cifar.py:dropout --workdir=WORKDIR"

The paper's hyper-parameters, as set below: SGD with Nesterov momentum 0.9 (no dampening), batch
128, lr 0.1 multiplied by 0.2 at epochs 60, 120 and 160, 200 epochs, weight decay 5e-4 on every
parameter (the authors' torch code decays BatchNorm's and the biases too: decay_all); inputs
normalised by the dataset's mean/std; horizontal flips and random 32x32 crops of the image padded
by 4 pixels (preset "cifar"); test on the single 32x32 image. Deviations:
  - The paper pads by reflecting the image; preset "cifar" pads with zeros.
  - Trained on all 50k training images and tested on the 10k test set, as the paper reports.
"""

from configs.base import apply_variant, base_config, one_of, parse_arg

DATASETS = ("cifar10", "cifar100")
VARIANTS = (*DATASETS, "dropout")

TABLE = {  # the README's row (scripts/recipes_table.py); errors: the registry's facts of these models
    "paper": "Zagoruyko & Komodakis 2016",
    "rows": "WRN-28-10 without dropout: CIFAR-10 / CIFAR-100 test error",
    "errors": (("", "wrn28_10"),),
}


def get_config(arg=None):
    tokens, smoke = parse_arg(arg, VARIANTS)
    config = base_config()
    config.model.name = "wrn28_10"
    config.model.dropout_rate = 0.3 if "dropout" in tokens else 0.0
    config.dataset.name = one_of(tokens, DATASETS, "cifar10")
    config.dataset.train_split, config.dataset.eval_split = "train", "test"
    config.input.image_size = 32
    config.input.normalize = "standardize"
    config.input.train_augment = "cifar"
    config.input.shuffle_buffer = 50_000

    config.batch_size = 128
    config.eval_batch_size = 1000
    config.num_epochs = 200
    config.optimizer.base_learning_rate = 0.1
    config.optimizer.reference_batch_size = 128
    config.optimizer.momentum = 0.9
    config.optimizer.nesterov = True
    config.optimizer.weight_decay = 5e-4
    config.optimizer.decay_all = True
    config.schedule.name = "step"
    config.schedule.boundaries_epochs = (60, 120, 160)
    config.schedule.decay_factor = 0.2

    config.log_every_steps = 100
    config.eval_every_epochs = 5
    config.checkpoint_every_steps = 2000
    if smoke:
        config.batch_size = config.eval_batch_size = 4
        config.input.shuffle_buffer = 64
        config.schedule.boundaries_epochs, config.schedule.boundaries_steps = (), (20, 40, 50)
    return apply_variant(config, "smoke" if smoke else None)
