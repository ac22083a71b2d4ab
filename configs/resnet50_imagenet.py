"""ResNet-50 on ImageNet (He et al. 2016, Table 3/4: 24.7% top-1 / 7.8% top-5 10-crop for ResNet-50
v1; torchvision's v1.5 weights reach 23.9% top-1 with one 224 centre crop).

Launch (the ILSVRC2012 tars in TFDS's manual dir, prepared once by
`python -m jaxcnn.data.prepare imagenet2012 --manual_dir DIR`):
    python -m jaxcnn.main --config=configs/resnet50_imagenet.py --workdir=runs/resnet50
    python -m jaxcnn.evaluate --config=configs/resnet50_imagenet.py --workdir=runs/resnet50 \\
        --protocols=center,ten_crop,multi_scale,crops144
    # a few CPU seconds of the same recipe on a tiny ResNet at 64x64 (what the tests run):
    python -m jaxcnn.main --config=configs/resnet50_imagenet.py:smoke --workdir=/tmp/r50 \\
        --config.dataset.data_dir=/path/to/tfds

The recipe is the paper's (Sec. 3.4): SGD momentum 0.9, weight decay 1e-4, batch 256, lr 0.1 divided
by 10 at the plateaus, here fixed at epochs 30 and 60 of 90 as in torchvision's reference and
Goyal et al. 2017; scale augmentation (shorter side in [256, 480]), 224 crops, flips and AlexNet's
colour lighting; no dropout. The network is torchvision's v1.5 (stride on the 3x3 conv); use
--config.model.name=resnet50_v1 for the paper's.
"""

from configs.base import apply_variant, base_config


def get_config(arg=None):
    config = base_config()
    config.model.name = "resnet50"
    config.dataset.name = "imagenet2012"
    config.dataset.train_split = "train"
    config.dataset.eval_split = "validation"
    config.input.image_size = 224
    config.input.normalize = "standardize"  # ImageNet mean/std per channel
    config.input.train_augment = "resnet_scale"
    config.input.shuffle_buffer = 16_384

    config.batch_size = 256
    config.eval_batch_size = 256
    config.num_epochs = 90
    config.optimizer.base_learning_rate = 0.1
    config.optimizer.reference_batch_size = 256  # lr = 0.1 * batch_size / 256 (Goyal et al. 2017)
    config.optimizer.weight_decay = 1e-4
    config.schedule.name = "step"
    config.schedule.boundaries_epochs = (30, 60)
    config.schedule.warmup_epochs = 0.0  # 5 for batches of several thousand (Goyal et al.)

    config.eval.protocols = ("center", "ten_crop", "multi_scale")
    config.eval.crop_ratio = 0.875  # 224 / 256

    config.log_every_steps = 100
    config.eval_every_epochs = 5
    config.checkpoint_every_steps = 1000  # in steps: bounds the work a preemption loses

    if arg == "smoke":  # the same recipe, tiny: resnet18 at 64x64, a few steps, every protocol
        config.model.name = "resnet18"
        config.input.image_size = 64
        config.batch_size = config.eval_batch_size = 4
        config.eval.protocols = ("center", "ten_crop", "multi_scale", "crops144")
        config.eval.scales = (64, 80, 96)
        config.input.shuffle_buffer = 64
    return apply_variant(config, arg)
