"""Inception-v4 and Inception-ResNet-v2 on ImageNet (Szegedy, Ioffe, Vanhoucke & Alemi 2017,
"Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning", Sec. 4 training,
Table 2: single crop, single model). The reported errors are the registry's facts:
`jaxcnn.model_info("inception_v4").reported` and `model_info("inception_resnet_v2").reported`
(imagenet/top1_error, imagenet/top5_error; Table 2 scores the non-blacklisted validation subset).

Variants (`:ARG`):
  v4, resnet_v2   the network (default v4: Inception-v4; resnet_v2: Inception-ResNet-v2).
  smoke           a few steps at 75x75 (the networks' smallest input).

Launch, one host:
    python -m jaxcnn.main --config=configs/inception_v4_imagenet.py --workdir=runs/inception_v4
Cloud TPU VM pod slice:
    gcloud compute tpus tpu-vm ssh NAME --zone=ZONE --worker=all \\
        --command="cd jaxcnn && python -m jaxcnn.main \\
        --config=configs/inception_v4_imagenet.py:resnet_v2 --workdir=WORKDIR"

The paper's hyper-parameters (Sec. 4), as set below: RMSProp with decay 0.9 and epsilon 1.0, lr
0.045 decayed every two epochs by 0.94 (schedule "exponential"), evaluations of a running average
of the parameters (ema_decay, logged as eval_ema/); 299x299 inputs; residuals scaled down in
Inception-ResNet-v2 (the model). Test: one 299 centre crop (crop_ratio 0.875). Deviations:
  - The paper ran 20 asynchronous replicas and gives no batch, length or weight decay; here one
    synchronous batch of 256 at the paper's rate (not scaled), 100 epochs, weight decay 4e-5 and
    RMSProp momentum 0.9 (TF-slim's), ema_decay 0.9999.
  - No auxiliary head (the registered networks have none), no label smoothing (the paper names none).
  - Random-resized crops and flips with colour distortion (TF-slim's Inception preprocessing);
    inputs standardised per channel (TF-slim scales to [-1, 1]).
"""

from configs.base import apply_variant, base_config, one_of, parse_arg, smoke_imagenet

VARIANTS = ("v4", "resnet_v2")

TABLE = {  # the README's row (scripts/recipes_table.py); errors: the registry's facts of these models
    "paper": "Szegedy et al. 2017",
    "rows": "Table 2 (single crop, single model): top-1 / top-5",
    "errors": (("v4", "inception_v4"), ("Inception-ResNet-v2", "inception_resnet_v2")),
}


def get_config(arg=None):
    tokens, smoke = parse_arg(arg, VARIANTS)
    network = one_of(tokens, VARIANTS, "v4")
    config = base_config()
    config.model.name = {"v4": "inception_v4", "resnet_v2": "inception_resnet_v2"}[network]
    config.dataset.name = "imagenet2012"
    config.dataset.train_split, config.dataset.eval_split = "train", "validation"
    config.input.image_size = 299
    config.input.train_augment = "inception_crop"
    config.input.extra_augment = "color"
    config.input.shuffle_buffer = 16_384

    config.batch_size = 256
    config.eval_batch_size = 256
    config.num_epochs = 100
    config.optimizer.name = "rmsprop"
    config.optimizer.rms_decay = 0.9
    config.optimizer.rms_eps = 1.0
    config.optimizer.momentum = 0.9
    config.optimizer.base_learning_rate = 0.045
    config.optimizer.reference_batch_size = 256
    config.optimizer.weight_decay = 4e-5
    config.schedule.name = "exponential"
    config.schedule.decay_factor = 0.94
    config.schedule.decay_every_epochs = 2.0
    config.ema_decay = 0.9999

    config.eval.protocols = ("center",)
    config.eval.crop_ratio = 0.875
    config.eval_every_epochs = 2
    config.checkpoint_every_steps = 2000
    if smoke:
        smoke_imagenet(config, 75)
    return apply_variant(config, "smoke" if smoke else None)
