"""DenseNets on ImageNet (Huang, Liu, van der Maaten & Weinberger 2017, "Densely Connected
Convolutional Networks", Sec. 4.2 training, Table 3: single-crop and 10-crop top-1 errors of
DenseNet-121/169/201/264). The reported errors are the registry's facts, e.g.
`jaxcnn.model_info("densenet121").reported` (imagenet/top1_error, imagenet/top1_error_10crop).

Variants (`:ARG`):
  121, 169, 201, 264, 161   the network (default 121); all are DenseNet-BC (bottleneck 4k,
                            compression 0.5); 161 (k=48, torchvision's) has no row in Table 3.
  smoke                     densenet121 at 64x64, a few steps, both protocols.

Launch, one host:
    python -m jaxcnn.main --config=configs/densenet_imagenet.py:169 --workdir=runs/densenet169
    python -m jaxcnn.evaluate --config=configs/densenet_imagenet.py:169 --workdir=runs/densenet169 \\
        --protocols=center,ten_crop
Cloud TPU VM pod slice:
    gcloud compute tpus tpu-vm ssh NAME --zone=ZONE --worker=all \\
        --command="cd jaxcnn && python -m jaxcnn.main \\
        --config=configs/densenet_imagenet.py:264 --workdir=WORKDIR"

The paper's hyper-parameters (Sec. 4.2), as set below: SGD batch 256, Nesterov momentum 0.9 without
dampening, weight decay 1e-4, lr 0.1 divided by 10 at epochs 30 and 60, 90 epochs; He
initialisation; no dropout on ImageNet; fb.resnet.torch's augmentation (preset inception_crop,
plus its colour jitter and PCA lighting: extra ops color, lighting). DenseNet-161 (memory):
batch 128, 100 epochs, the rate also divided at epoch 90, not scaled. Test: one 224 centre crop
and the 10 crops (protocols center, ten_crop). Deviations:
  - Weight decay on kernels only (not BatchNorm scales or biases).
  - Inputs are standardised per channel.
"""

from configs.base import apply_variant, base_config, one_of, parse_arg, smoke_imagenet

VARIANTS = ("121", "169", "201", "264", "161")

TABLE = {  # the README's row (scripts/recipes_table.py); errors: the registry's facts of these models
    "paper": "Huang et al. 2017",
    "rows": "Table 3: top-1 with 1 crop / 10 crops",
    "errors": tuple((depth, f"densenet{depth}") for depth in VARIANTS if depth != "161"),  # no 161 row
}


def get_config(arg=None):
    tokens, smoke = parse_arg(arg, VARIANTS)
    depth = one_of(tokens, VARIANTS, "121")
    config = base_config()
    config.model.name = f"densenet{depth}"
    config.dataset.name = "imagenet2012"
    config.dataset.train_split, config.dataset.eval_split = "train", "validation"
    config.input.image_size = 224
    config.input.train_augment = "inception_crop"
    config.input.extra_augment = "color,lighting"
    config.input.shuffle_buffer = 16_384

    config.batch_size = 256
    config.eval_batch_size = 256
    config.num_epochs = 90
    config.optimizer.base_learning_rate = 0.1
    config.optimizer.reference_batch_size = 256  # lr = 0.1 * batch_size / 256
    config.optimizer.momentum = 0.9
    config.optimizer.nesterov = True
    config.optimizer.weight_decay = 1e-4
    config.schedule.name = "step"
    config.schedule.boundaries_epochs = (30, 60)
    if depth == "161":  # Sec. 4.2: a smaller batch, compensated by a longer run
        config.batch_size = config.optimizer.reference_batch_size = 128
        config.num_epochs = 100
        config.schedule.boundaries_epochs = (30, 60, 90)

    config.eval.protocols = ("center", "ten_crop")
    config.eval.crop_ratio = 0.875
    config.eval_every_epochs = 5
    config.checkpoint_every_steps = 1000
    if smoke:
        smoke_imagenet(config, 64)
    return apply_variant(config, "smoke" if smoke else None)
