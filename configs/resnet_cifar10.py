"""ResNets on CIFAR-10 (He, Zhang, Ren & Sun 2016, "Deep Residual Learning for Image Recognition",
Sec. 4.2, Table 6 and Fig. 6): ResNet-20/32/44/56/110 and their plain twins, 6n + 2 layers, option A
shortcuts. The reported test errors are the registry's facts: `jaxcnn.model_info("resnet20").reported`
(cifar10/test_error; the plain nets' are plotted in Fig. 6 only, not tabulated).

Variants (`:ARG`, comma-separated, e.g. `:110` or `:56,plain`):
  20, 32, 44, 56, 110   the depth (default 20).
  plain                 the network without shortcuts (plain20 ... plain110).
  val                   the paper's 45k/5k train/validation split (train[:90%] / train[90%:]), on
                        which it fixed the schedule; the default trains on all 50k and tests on the
                        10k test set, as Table 6 reports.
  mnist                 the same networks and optimiser on MNIST (28x28 digits padded, centred, into
                        the 32x32 field; one channel; no flips or crops, which would change a digit's
                        meaning or cut it): what experiments/resnet_plain_vs_residual runs on a CPU.
  smoke                 a few steps of the same recipe (what the tests run).

Launch, one host (CIFAR-10 prepared by `python -m jaxcnn.data.prepare cifar10`):
    python -m jaxcnn.main --config=configs/resnet_cifar10.py:56 --workdir=runs/resnet56
Cloud TPU VM pod slice (one run per slice; sweeps of depths fit better on one host):
    gcloud compute tpus tpu-vm ssh NAME --zone=ZONE --worker=all \\
        --command="cd jaxcnn && python -m jaxcnn.main \\
        --config=configs/resnet_cifar10.py:110 --workdir=WORKDIR"

The paper's hyper-parameters, as set below: SGD batch 128, momentum 0.9, weight decay 1e-4, lr 0.1
divided by 10 at 32k and 48k iterations, stop at 64k; He initialisation, BatchNorm, no dropout;
4 pixels padded on each side, random 32x32 crop or its flip (preset "cifar"); test on the single
32x32 image. Deviations:
  - ResNet-110 starts at 0.01 until the training error falls under 80% (about 400 iterations), then
    0.1: here a linear warm-up over the first epoch (schedule.warmup_epochs = 1) stands in for it.
  - Inputs are standardised per channel (mean/std), not the paper's per-pixel mean subtraction.
  - Weight decay on kernels only (not BatchNorm scales or biases).
"""

from configs.base import apply_variant, base_config, one_of, parse_arg

DEPTHS = ("20", "32", "44", "56", "110")
VARIANTS = (*DEPTHS, "plain", "val", "mnist")

TABLE = {  # the README's row (scripts/recipes_table.py); errors: the registry's facts of these models
    "paper": "He et al. 2016, Sec. 4.2",
    "rows": "Table 6 (CIFAR-10 test error)",
    "errors": tuple((depth, f"resnet{depth}") for depth in DEPTHS),
}


def get_config(arg=None):
    tokens, smoke = parse_arg(arg, VARIANTS)
    depth = one_of(tokens, DEPTHS, "20")
    config = base_config()
    config.model.name = f"{'plain' if 'plain' in tokens else 'resnet'}{depth}"
    config.dataset.name = "cifar10"
    if "val" in tokens:
        config.dataset.train_split, config.dataset.eval_split = "train[:90%]", "train[90%:]"
    else:
        config.dataset.train_split, config.dataset.eval_split = "train", "test"
    config.input.image_size = 32
    config.input.normalize = "standardize"
    config.input.train_augment = "cifar"
    config.input.shuffle_buffer = 50_000
    if "mnist" in tokens:
        config.dataset.name = "mnist"
        config.input.train_augment = "none"
        config.input.shuffle_buffer = 60_000

    config.batch_size = 128
    config.eval_batch_size = 1000
    config.num_train_steps = 64_000
    config.optimizer.base_learning_rate = 0.1
    config.optimizer.reference_batch_size = 128
    config.optimizer.momentum = 0.9
    config.optimizer.weight_decay = 1e-4
    config.schedule.name = "step"
    config.schedule.boundaries_steps = (32_000, 48_000)
    config.schedule.decay_factor = 0.1
    if depth == "110":
        config.schedule.warmup_epochs = 1.0

    config.log_every_steps = 100
    config.eval_every_steps = 2000
    config.checkpoint_every_steps = 2000
    if smoke:
        config.batch_size = config.eval_batch_size = 4
        config.input.shuffle_buffer = 64
        config.schedule.boundaries_steps = (30, 45)
    return apply_variant(config, "smoke" if smoke else None)
