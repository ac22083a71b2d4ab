"""Inception v3 on ImageNet (Szegedy, Vanhoucke, Ioffe, Shlens & Wojna 2016, "Rethinking the
Inception Architecture for Computer Vision", Sec. 8 training, Table 3's last row: single 299 crop).
The reported errors are the registry's facts: `jaxcnn.model_info("inception_v3").reported`
(imagenet/top1_error, imagenet/top5_error).

Variants (`:ARG`):
  no_aux   without the auxiliary head (an ablation; the paper trains with it).
  smoke    a few steps at 75x75 (the network's smallest input).

Launch, one host:
    python -m jaxcnn.main --config=configs/inception_v3_imagenet.py --workdir=runs/inception_v3
Cloud TPU VM pod slice:
    gcloud compute tpus tpu-vm ssh NAME --zone=ZONE --worker=all \\
        --command="cd jaxcnn && python -m jaxcnn.main \\
        --config=configs/inception_v3_imagenet.py --workdir=WORKDIR"

The paper's hyper-parameters, as set below: RMSProp with decay 0.9 and epsilon 1.0, lr 0.045 decayed
every two epochs by 0.94 (schedule "exponential"), gradient clipping at global norm 2.0, label
smoothing 0.1 (Sec. 7), the auxiliary classifier on the 17x17 grid (Sec. 4), 100 epochs, 299x299
inputs. Test: one 299 centre crop (crop_ratio 0.875: 299 of 342). Deviations:
  - The paper ran 50 asynchronous replicas of batch 32; here one synchronous batch of 256 at the
    paper's rate 0.045 (reference_batch_size 256: not scaled).
  - Not in the paper, from TF-slim's Inception v3 training: RMSProp momentum 0.9, weight decay 4e-5,
    auxiliary loss weight 0.4, the random-resized crop with flips and colour distortion.
  - Inputs are standardised per channel (TF-slim scales to [-1, 1]).
"""

from configs.base import apply_variant, base_config, parse_arg, smoke_imagenet

VARIANTS = ("no_aux",)

TABLE = {  # the README's row (scripts/recipes_table.py); errors: the registry's facts of these models
    "paper": "Szegedy et al. 2016",
    "rows": "Table 3, last row (single 299 crop): top-1 / top-5",
    "errors": (("", "inception_v3"),),
}


def get_config(arg=None):
    tokens, smoke = parse_arg(arg, VARIANTS)
    config = base_config()
    config.model.name = "inception_v3"
    config.model.aux_logits = "no_aux" not in tokens  # a switch: the auxiliary head on Mixed_6e
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
    config.optimizer.grad_clip_norm = 2.0
    config.schedule.name = "exponential"
    config.schedule.decay_factor = 0.94
    config.schedule.decay_every_epochs = 2.0
    config.loss.label_smoothing = 0.1
    config.loss.aux_weight = 0.4

    config.eval.protocols = ("center",)
    config.eval.crop_ratio = 0.875
    config.eval_every_epochs = 2
    config.checkpoint_every_steps = 2000
    if smoke:
        smoke_imagenet(config, 75)
    return apply_variant(config, "smoke" if smoke else None)
