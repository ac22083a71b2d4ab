"""MobileNets on ImageNet: v1 (Howard et al. 2017, "MobileNets: Efficient Convolutional Neural
Networks for Mobile Vision Applications", Sec. 3.4 training, Tables 6 and 7: width and resolution
multipliers) and v2 (Sandler et al. 2018, "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
Sec. 6.1, Table 4). The reported errors are the registry's facts for the 1.0-224 rows:
`jaxcnn.model_info("mobilenet_v1").reported` and `model_info("mobilenet_v2").reported`
(imagenet/top1_error); the rows of other widths and resolutions are not registry facts.

Variants (`:ARG`, comma-separated, e.g. `:v2,0.5,160`):
  v1, v2                         the network (default v1).
  1.0, 0.75, 0.5, 0.35, 0.25     the width multiplier alpha (default 1.0): every layer's channels
                                 times alpha (v2: rounded to multiples of 8, the last conv kept at
                                 1280 below 1.0).
  224, 192, 160, 128, 96         the input resolution rho (default 224), for training and test.
  smoke                          a few steps at 64x64.

Launch, one host:
    python -m jaxcnn.main --config=configs/mobilenet_imagenet.py:v1,0.5 --workdir=runs/mobilenet_v1_050
Cloud TPU VM pod slice:
    gcloud compute tpus tpu-vm ssh NAME --zone=ZONE --worker=all \\
        --command="cd jaxcnn && python -m jaxcnn.main \\
        --config=configs/mobilenet_imagenet.py:v2 --workdir=WORKDIR"

The papers' hyper-parameters, as set below: RMSProp with decay 0.9 and momentum 0.9 (v2 Sec. 6.1;
v1 Sec. 3.4 says RMSProp "similar to Inception V3"), lr 0.045 decayed by 0.98 every epoch, weight
decay 4e-5, BatchNorm after every layer, no label smoothing or side heads (v1 Sec. 3.4); test
one centre crop (crop_ratio 0.875).
Deviations:
  - The papers trained asynchronously (v2: 16 workers, batch 96); here one synchronous batch of
    256 at the papers' rate 0.045 (not scaled), RMSProp epsilon 1.0 (Inception v3's).
  - No epoch count in either paper: 200 epochs here (0.98 per epoch leaves 1.8% of the rate).
  - Crops of 8-100% of the area (preset inception_crop), no colour distortion; v1 limits the size
    of small crops without saying to what.
  - Weight decay on kernels only, the depthwise ones included (v1 puts little or none on them).
  - Inputs are standardised per channel (TF-slim scales to [-1, 1]).
"""

from configs.base import apply_variant, base_config, one_of, parse_arg, smoke_imagenet

VERSIONS = ("v1", "v2")
WIDTHS = ("1.0", "0.75", "0.5", "0.35", "0.25")
RESOLUTIONS = ("224", "192", "160", "128", "96")
VARIANTS = (*VERSIONS, *WIDTHS, *RESOLUTIONS)

TABLE = {  # the README's row (scripts/recipes_table.py); errors: the registry's facts of these models
    "paper": "Howard et al. 2017; Sandler et al. 2018",
    "rows": "v1 Table 6/7 and v2 Table 4, the 1.0-224 rows: top-1",
    "errors": (("v1", "mobilenet_v1"), ("v2", "mobilenet_v2")),
}


def get_config(arg=None):
    tokens, smoke = parse_arg(arg, VARIANTS)
    version = one_of(tokens, VERSIONS, "v1")
    width = one_of(tokens, WIDTHS, "1.0")
    resolution = one_of(tokens, RESOLUTIONS, "224")
    config = base_config()
    config.model.name = f"mobilenet_{version}"
    config.model.width_multiplier = float(width)
    config.dataset.name = "imagenet2012"
    config.dataset.train_split, config.dataset.eval_split = "train", "validation"
    config.input.image_size = int(resolution)
    config.input.train_augment = "inception_crop"
    config.input.shuffle_buffer = 16_384

    config.batch_size = 256
    config.eval_batch_size = 256
    config.num_epochs = 200
    config.optimizer.name = "rmsprop"
    config.optimizer.rms_decay = 0.9
    config.optimizer.rms_eps = 1.0
    config.optimizer.momentum = 0.9
    config.optimizer.base_learning_rate = 0.045
    config.optimizer.reference_batch_size = 256
    config.optimizer.weight_decay = 4e-5
    config.schedule.name = "exponential"
    config.schedule.decay_factor = 0.98
    config.schedule.decay_every_epochs = 1.0

    config.eval.protocols = ("center",)
    config.eval.crop_ratio = 0.875
    config.eval_every_epochs = 5
    config.checkpoint_every_steps = 1000
    if smoke:
        smoke_imagenet(config, 64)
    return apply_variant(config, "smoke" if smoke else None)
