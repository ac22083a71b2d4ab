"""ResNeXt on ImageNet (Xie, Girshick, Dollar, Tu & He 2017, "Aggregated Residual Transformations
for Deep Neural Networks", Sec. 4 and Table 3: cardinality against width at fixed complexity,
single 224 crop). The reported errors are the registry's facts, e.g.
`jaxcnn.model_info("resnext50_32x4d").reported` (imagenet/top1_error; Table 3's 1x64d rows are
`model_info("resnet50")` and `model_info("resnet101")`).

Variants (`:ARG`, comma-separated, e.g. `:101,8x14d`):
  50, 101                          the depth (default 50).
  1x64d, 2x40d, 4x24d, 8x14d, 32x4d  cardinality x bottleneck width of Table 3 (default 32x4d);
                                   1x64d is ResNet-50/101 (v1.5: stride on the 3x3, as ResNeXt),
                                   the others the same template with groups=C, base_width=d.
  64x4d, 32x8d                     (101 only, implied) the registered resnext101_64x4d (Table 5's row at
                                   224) and torchvision's resnext101_32x8d.
  smoke                            resnext50_32x4d at 64x64, a few steps.

Launch, one host:
    python -m jaxcnn.main --config=configs/resnext_imagenet.py --workdir=runs/resnext50_32x4d
Cloud TPU VM pod slice:
    gcloud compute tpus tpu-vm ssh NAME --zone=ZONE --worker=all \\
        --command="cd jaxcnn && python -m jaxcnn.main \\
        --config=configs/resnext_imagenet.py:101 --workdir=WORKDIR"

The paper's hyper-parameters (Sec. 4), as set below: SGD batch 256, momentum 0.9, weight decay
1e-4, lr 0.1 divided by 10 three times; He initialisation; BatchNorm after every conv; projection
shortcuts where the shape changes (type B), stride on the 3x3 of each stage's first unit; the
scale and aspect-ratio augmentation of fb.resnet.torch (preset inception_crop, plus its colour
jitter and PCA lighting: extra ops color, lighting). Test: one 224 centre crop of the image resized
to shorter side 256 (crop_ratio 0.875). Deviations:
  - The paper cites fb.resnet.torch's schedule without epochs; here the rate drops at epochs 30,
    60 and 90 of 100.
  - Weight decay on kernels only (not BatchNorm scales or biases).
  - Inputs are standardised per channel.
"""

from configs.base import apply_variant, base_config, one_of, parse_arg, smoke_imagenet

DEPTHS = ("50", "101")
TEMPLATES = ("1x64d", "2x40d", "4x24d", "8x14d", "32x4d")
LARGE = ("64x4d", "32x8d")  # registered 101-layer nets only
VARIANTS = (*DEPTHS, *TEMPLATES, *LARGE)

TABLE = {  # the README's row (scripts/recipes_table.py); errors: the registry's facts of these models
    "paper": "Xie et al. 2017",
    "rows": "Table 3 (224 centre crop): top-1 of the 1x64d and 32x4d rows",
    "errors": (
        ("50 1x64d", "resnet50"),
        ("50 32x4d", "resnext50_32x4d"),
        ("101 1x64d", "resnet101"),
        ("101 32x4d", "resnext101_32x4d"),
    ),
}


def get_config(arg=None):
    tokens, smoke = parse_arg(arg, VARIANTS)
    template = one_of(tokens, TEMPLATES + LARGE, "32x4d")
    depth = one_of(tokens, DEPTHS, "101" if template in LARGE else "50")
    config = base_config()
    if template in LARGE:
        if depth != "101":
            raise ValueError(f"config argument {template} is a 101-layer net; add 101, not {depth}")
        config.model.name = f"resnext101_{template}"
    elif template == "1x64d":
        config.model.name = f"resnet{depth}"
    else:
        config.model.name = f"resnext{depth}_32x4d"
        cardinality, width = template[:-1].split("x")
        config.model.groups, config.model.base_width = int(cardinality), int(width)
    config.dataset.name = "imagenet2012"
    config.dataset.train_split, config.dataset.eval_split = "train", "validation"
    config.input.image_size = 224
    config.input.train_augment = "inception_crop"
    config.input.extra_augment = "color,lighting"
    config.input.shuffle_buffer = 16_384

    config.batch_size = 256
    config.eval_batch_size = 256
    config.num_epochs = 100
    config.optimizer.base_learning_rate = 0.1
    config.optimizer.reference_batch_size = 256  # lr = 0.1 * batch_size / 256
    config.optimizer.momentum = 0.9
    config.optimizer.weight_decay = 1e-4
    config.schedule.name = "step"
    config.schedule.boundaries_epochs = (30, 60, 90)

    config.eval.protocols = ("center",)
    config.eval.crop_ratio = 0.875
    config.eval_every_epochs = 5
    config.checkpoint_every_steps = 1000
    if smoke:
        smoke_imagenet(config, 64)
    return apply_variant(config, "smoke" if smoke else None)
