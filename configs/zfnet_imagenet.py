"""ZFNet on ImageNet (Zeiler & Fergus 2014, "Visualizing and Understanding Convolutional Networks",
Sec. 3 training, Table 2's "1 convnet" row: ILSVRC-2012 validation error over 10 crops). The
reported errors are the registry's facts: `jaxcnn.model_info("zfnet").reported`
(imagenet/top1_error_10crop, imagenet/top5_error_10crop).

Variants (`:ARG`):
  step    the rate on fixed epochs (x0.1 at 30 and 50 of 70) instead of on plateaus.
  smoke   a few steps at 63x63 (the network's smallest input).

Launch, one host:
    python -m jaxcnn.main --config=configs/zfnet_imagenet.py --workdir=runs/zfnet
    python -m jaxcnn.evaluate --config=configs/zfnet_imagenet.py --workdir=runs/zfnet --protocols=ten_crop
Cloud TPU VM pod slice:
    gcloud compute tpus tpu-vm ssh NAME --zone=ZONE --worker=all \\
        --command="cd jaxcnn && python -m jaxcnn.main \\
        --config=configs/zfnet_imagenet.py --workdir=WORKDIR"

The paper's hyper-parameters, as set below: SGD batch 128, momentum 0.9, lr 0.01 annealed by hand
when the validation error plateaued, 70 epochs; weights N(0, 0.01), biases 0 (the model's init);
dropout 0.5 in fc6/fc7; images resized to shorter side 256, the central 256 square, random 224
crops and flips; test on 10 crops. Deviations:
  - "Annealed manually" becomes the plateau rule (x0.1 after 5 evaluations without improvement,
    an evaluation every epoch, at most 3 times); weight decay 5e-4 (AlexNet's, not in the paper).
  - The renormalisation of conv filters whose RMS exceeds 0.1 (Sec. 3) is not implemented.
  - PCA lighting is kept from the shared "alexnet" preset (the paper does not mention it);
    standardised inputs (per-channel mean/std) rather than the per-pixel mean.
"""

from configs.base import apply_variant, base_config, parse_arg, smoke_imagenet

VARIANTS = ("step",)

TABLE = {  # the README's row (scripts/recipes_table.py); errors: the registry's facts of these models
    "paper": "Zeiler & Fergus 2014",
    "rows": "Table 2, 1 convnet (ILSVRC-2012 val, 10 crops): top-1 / top-5",
    "errors": (("", "zfnet"),),
}


def get_config(arg=None):
    tokens, smoke = parse_arg(arg, VARIANTS)
    config = base_config()
    config.model.name = "zfnet"
    # Ablation switches (--config.model.KEY=VALUE), at the paper's values: activation "tanh" (AlexNet's
    # ablations: tanh units, no LRN, non-overlapping 2x2/2 pools with pool_window 2, dropout_rate).
    config.model.activation, config.model.lrn, config.model.pool_window = "relu", True, 3
    config.model.dropout_rate = 0.5
    config.dataset.name = "imagenet2012"
    config.dataset.train_split, config.dataset.eval_split = "train", "validation"
    config.input.image_size = 224
    config.input.train_augment = "alexnet"
    config.input.shuffle_buffer = 16_384

    config.batch_size = 128
    config.eval_batch_size = 256
    config.num_epochs = 70
    config.optimizer.base_learning_rate = 0.01
    config.optimizer.reference_batch_size = 128
    config.optimizer.momentum = 0.9
    config.optimizer.weight_decay = 5e-4
    config.schedule.name = "plateau"
    config.schedule.patience = 5
    config.schedule.max_reductions = 3
    if "step" in tokens:
        config.schedule.name, config.schedule.boundaries_epochs = "step", (30, 50)

    config.eval.protocols = ("center", "ten_crop")
    config.eval.crop_ratio = 224 / 256
    config.eval_every_epochs = 1
    config.checkpoint_every_steps = 2000
    config.checkpoint.keep_best = 1
    if smoke:
        smoke_imagenet(config, 63)
    return apply_variant(config, "smoke" if smoke else None)
