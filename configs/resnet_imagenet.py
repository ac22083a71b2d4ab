"""ResNets on ImageNet (He, Zhang, Ren & Sun 2016, "Deep Residual Learning for Image Recognition"):
ResNet-18/34/50/101/152, Table 3 (10-crop test) and Table 4 (multi-scale fully convolutional test)
rows. The reported errors are the registry's facts, e.g. `jaxcnn.model_info("resnet50_v1").reported`
(imagenet/top1_error_10crop, imagenet/top1_error_multiscale, ...); the v1.5 rows hold torchvision's
or Xie et al.'s centre-crop figures where known.

Variants (`:ARG`, comma-separated, e.g. `:101,v1`):
  18, 34, 50, 101, 152   the depth (default 50).
  v1, v1.5               v1: the paper's bottleneck (stride on the first 1x1; resnet50_v1 ...);
                         v1.5 (default): torchvision's (stride on the 3x3). 18 and 34 have basic
                         blocks, the same in both.
  A, B, C                Table 3's shortcut options: A zero-padding where the shape changes (no
                         parameters), B projections there (default, the registered nets), C
                         projections in every unit (config.model.shortcut).
  plateau                the paper's rule: lr / 10 when the validation error plateaus (up to 3
                         times, 120 epochs = the paper's 60e4 iterations of 256) instead of the
                         default fixed epochs 30 and 60 of 90 (torchvision's reference, Goyal et al.).
  smoke                  resnet18 at 64x64, a few steps, every protocol.

Launch, one host (ILSVRC2012 prepared once by `python -m jaxcnn.data.prepare imagenet2012 --manual_dir DIR`):
    python -m jaxcnn.main --config=configs/resnet_imagenet.py:50,v1 --workdir=runs/resnet50_v1
    python -m jaxcnn.evaluate --config=configs/resnet_imagenet.py:50,v1 --workdir=runs/resnet50_v1 \\
        --protocols=center,ten_crop,multi_scale
Cloud TPU VM pod slice:
    gcloud compute tpus tpu-vm ssh NAME --zone=ZONE --worker=all \\
        --command="cd jaxcnn && python -m jaxcnn.main \\
        --config=configs/resnet_imagenet.py:152 --workdir=WORKDIR"

The paper's hyper-parameters (Sec. 3.4), as set below: SGD batch 256, momentum 0.9, weight decay
1e-4, lr 0.1 divided by 10 when the error plateaus, up to 60e4 iterations; no dropout; BatchNorm
after every conv; He initialisation; shorter side resized in [256, 480], random 224 crops, flips,
AlexNet's colour augmentation (preset resnet_scale). Test: 10 crops (Table 3) and the average of
scores at shorter sides {224, 256, 384, 480, 640} (Table 4). Deviations:
  - Default schedule: fixed epochs 30 and 60 of 90 (the field's choice); `:plateau` for the paper's.
    Plateau patience (not in the paper): an evaluation every epoch, 5 without improvement.
  - Weight decay on kernels only (not BatchNorm scales or biases).
  - multi_scale evaluates the central Q x Q square at each Q, not the whole Q x W image.
  - Standardised inputs (per-channel mean/std), not the per-pixel mean subtraction.
"""

from configs.base import apply_variant, base_config, one_of, parse_arg, smoke_imagenet

DEPTHS = ("18", "34", "50", "101", "152")
SHORTCUTS = {"A": "zero_pad", "B": "projection", "C": "projection_all"}  # He et al. Sec. 4.1
VARIANTS = (*DEPTHS, "v1", "v1.5", *SHORTCUTS, "plateau")

TABLE = {  # the README's row (scripts/recipes_table.py); errors: the registry's facts of these models
    "paper": "He et al. 2016",
    "rows": "Table 3 (10 crops) and Table 4 (multi-scale): top-1 / top-5 each; v1.5: centre-crop top-1",
    "errors": (
        ("34", "resnet34"),
        ("50 v1", "resnet50_v1"),
        ("101 v1", "resnet101_v1"),
        ("152 v1", "resnet152_v1"),
        ("50", "resnet50"),
        ("101", "resnet101"),
    ),
}


def get_config(arg=None):
    tokens, smoke = parse_arg(arg, VARIANTS)
    depth = one_of(tokens, DEPTHS, "50")
    version = one_of(tokens, ("v1", "v1.5"), "v1.5")
    config = base_config()
    bottleneck_v1 = version == "v1" and depth not in ("18", "34")
    config.model.name = f"resnet{depth}_v1" if bottleneck_v1 else f"resnet{depth}"
    config.model.shortcut = SHORTCUTS[one_of(tokens, tuple(SHORTCUTS), "B")]
    config.model.zero_init_last_bn = False  # a switch: True starts each residual branch at zero
    config.dataset.name = "imagenet2012"
    config.dataset.train_split, config.dataset.eval_split = "train", "validation"
    config.input.image_size = 224
    config.input.normalize = "standardize"  # ImageNet mean/std per channel
    config.input.train_augment = "resnet_scale"
    config.input.shuffle_buffer = 16_384

    config.batch_size = 256
    config.eval_batch_size = 256
    config.num_epochs = 90
    config.optimizer.base_learning_rate = 0.1
    config.optimizer.reference_batch_size = 256  # lr = 0.1 * batch_size / 256 (Goyal et al. 2017)
    config.optimizer.momentum = 0.9
    config.optimizer.weight_decay = 1e-4
    config.schedule.name = "step"
    config.schedule.boundaries_epochs = (30, 60)
    config.schedule.warmup_epochs = 0.0  # 5 for batches of several thousand (Goyal et al.)
    if "plateau" in tokens:
        config.num_epochs = 120
        config.schedule.name, config.schedule.boundaries_epochs = "plateau", ()
        config.schedule.patience, config.schedule.max_reductions = 5, 3

    config.eval.protocols = ("center", "ten_crop", "multi_scale")
    config.eval.crop_ratio = 0.875  # 224 / 256
    config.eval.scales = (224, 256, 384, 480, 640)

    config.log_every_steps = 100
    config.eval_every_epochs = 1 if "plateau" in tokens else 5
    config.checkpoint_every_steps = 1000  # in steps: bounds the work a preemption loses

    if smoke:  # the same recipe, tiny: resnet18 at 64x64, a few steps, every protocol
        smoke_imagenet(config, 64)
        config.model.name = "resnet18" if not tokens & set(DEPTHS) else config.model.name
        config.eval.protocols = ("center", "ten_crop", "multi_scale", "crops144")
        config.eval.scales = (64, 80, 96)
    return apply_variant(config, "smoke" if smoke else None)
