"""GoogLeNet on ImageNet (Szegedy et al. 2015, "Going Deeper with Convolutions", Sec. 6 training,
Sec. 10 and Table 3 test: one model with 1, 10 and 144 crops). The reported top-5 errors are the
registry's facts: `jaxcnn.model_info("googlenet").reported` (imagenet/top5_error,
imagenet/top5_error_10crop, imagenet/top5_error_144crop).

Variants (`:ARG`):
  torchvision   torchvision's googlenet_tv (BatchNorm, no LRN) with the same recipe.
  smoke         a few steps at 64x64 with the 10-crop and 144-crop protocols.

Launch, one host:
    python -m jaxcnn.main --config=configs/googlenet_imagenet.py --workdir=runs/googlenet
    python -m jaxcnn.evaluate --config=configs/googlenet_imagenet.py --workdir=runs/googlenet \\
        --protocols=center,ten_crop,crops144
Cloud TPU VM pod slice:
    gcloud compute tpus tpu-vm ssh NAME --zone=ZONE --worker=all \\
        --command="cd jaxcnn && python -m jaxcnn.main \\
        --config=configs/googlenet_imagenet.py --workdir=WORKDIR"

The paper's hyper-parameters, as set below: SGD momentum 0.9, the rate decreased by 4% every 8
epochs (schedule "exponential", x0.96 every 8 epochs), Polyak averaging for the final model,
photometric distortions (extra op "color"), crops of 8%-100% of the area with aspect ratio in
[3/4, 4/3] (preset inception_crop), the auxiliary classifiers' losses weighted 0.3, dropout 0.4
(the model). Test: 1, 10 and 144 crops (protocols center, ten_crop, crops144). Deviations:
  - The paper trained asynchronously (DistBelief) and gives no batch, base rate, weight decay or
    length; these follow Caffe's bvlc_googlenet solver: base rate 0.01 at batch 32 (linearly
    scaled: 0.08 at the batch 256 here), weight decay 2e-4; 90 epochs is this recipe's choice.
  - Polyak averaging is an exponential moving average of the weights (ema_decay 0.9999), logged
    as eval_ema/.
  - Inputs are standardised per channel.
"""

from configs.base import apply_variant, base_config, one_of, parse_arg, smoke_imagenet

VARIANTS = ("torchvision",)

TABLE = {  # the README's row (scripts/recipes_table.py); errors: the registry's facts of these models
    "paper": "Szegedy et al. 2015",
    "rows": "Table 3, 1 model: top-5 with 1 / 10 / 144 crops",
    "errors": (("", "googlenet"),),
}


def get_config(arg=None):
    tokens, smoke = parse_arg(arg, VARIANTS)
    network = one_of(tokens, VARIANTS, "")
    config = base_config()
    config.model.name = "googlenet_tv" if network == "torchvision" else "googlenet"
    config.model.aux_logits = True  # a switch: False drops both auxiliary classifiers (loss.aux_weight)
    config.dataset.name = "imagenet2012"
    config.dataset.train_split, config.dataset.eval_split = "train", "validation"
    config.input.image_size = 224
    config.input.train_augment = "inception_crop"
    config.input.extra_augment = "color"
    config.input.shuffle_buffer = 16_384

    config.batch_size = 256
    config.eval_batch_size = 256
    config.num_epochs = 90
    config.optimizer.base_learning_rate = 0.01
    config.optimizer.reference_batch_size = 32
    config.optimizer.momentum = 0.9
    config.optimizer.weight_decay = 2e-4
    config.schedule.name = "exponential"
    config.schedule.decay_factor = 0.96
    config.schedule.decay_every_epochs = 8.0
    config.loss.aux_weight = 0.3
    config.ema_decay = 0.9999

    config.eval.protocols = ("center", "ten_crop", "crops144")
    config.eval.crop_ratio = 0.875
    config.eval_every_epochs = 2
    config.checkpoint_every_steps = 2000
    if smoke:
        smoke_imagenet(config, 64)
    return apply_variant(config, "smoke" if smoke else None)
