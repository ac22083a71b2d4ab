"""Squeeze-and-Excitation networks on ImageNet (Hu, Shen & Sun 2018, "Squeeze-and-Excitation
Networks", Sec. 5 implementation, Table 2: single 224 crop). The reported errors are the registry's
facts: `jaxcnn.model_info("se_resnet50").reported` (imagenet/top1_error, imagenet/top5_error).

Variants (`:ARG`, comma-separated, e.g. `:resnext50,r8`):
  resnet50, resnext50   SE-ResNet-50 (default; stride on the first 1x1 as the authors' Caffe
                        ResNet-50) or SE-ResNeXt-50 32x4d (stride on the 3x3 as ResNeXt).
  r2, r4, r8, r16, r32  the reduction ratio r of the excitation's bottleneck (default 16, Sec. 6.1).
  no_se                 the same network with no SE blocks (the ablation's baseline: ResNet-50 v1
                        or ResNeXt-50, trained with this recipe).
  smoke                 a few steps at 64x64.

Launch, one host:
    python -m jaxcnn.main --config=configs/senet_imagenet.py --workdir=runs/se_resnet50
Cloud TPU VM pod slice (the paper's batch of 1024 fits a slice):
    gcloud compute tpus tpu-vm ssh NAME --zone=ZONE --worker=all \\
        --command="cd jaxcnn && python -m jaxcnn.main \\
        --config=configs/senet_imagenet.py:resnext50 --workdir=WORKDIR"

The paper's hyper-parameters (Sec. 5), as set below: synchronous SGD, momentum 0.9, batch 1024, lr
0.6 divided by 10 every 30 epochs, 100 epochs from scratch; random-size crops to 224 and flips
(preset inception_crop); He initialisation; test one 224 centre crop of the image resized to
shorter side 256. Deviations:
  - Weight decay 1e-4 on kernels only (the paper gives no value; the ResNet one).
  - No balanced-data sampling; inputs standardised per channel (the paper subtracts the mean RGB).
  - lr = 0.6 * batch_size / 1024 when the batch is changed.
"""

from configs.base import apply_variant, base_config, one_of, parse_arg, smoke_imagenet

NETWORKS = ("resnet50", "resnext50")
RATIOS = ("r2", "r4", "r8", "r16", "r32")
VARIANTS = (*NETWORKS, *RATIOS, "no_se")

TABLE = {  # the README's row (scripts/recipes_table.py); errors: the registry's facts of these models
    "paper": "Hu et al. 2018",
    "rows": "Table 2, SE-ResNet-50 (224 centre crop): top-1 / top-5",
    "errors": (("", "se_resnet50"),),
}


def get_config(arg=None):
    tokens, smoke = parse_arg(arg, VARIANTS)
    network = one_of(tokens, NETWORKS, "resnet50")
    ratio = one_of(tokens, RATIOS + ("no_se",), "r16")
    config = base_config()
    config.model.name = {"resnet50": "se_resnet50", "resnext50": "se_resnext50_32x4d"}[network]
    config.model.se_reduction = 0 if ratio == "no_se" else int(ratio[1:])
    config.dataset.name = "imagenet2012"
    config.dataset.train_split, config.dataset.eval_split = "train", "validation"
    config.input.image_size = 224
    config.input.train_augment = "inception_crop"
    config.input.shuffle_buffer = 16_384

    config.batch_size = 1024
    config.eval_batch_size = 256
    config.num_epochs = 100
    config.optimizer.base_learning_rate = 0.6
    config.optimizer.reference_batch_size = 1024
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
