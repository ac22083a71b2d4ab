"""Darknet classifiers on ImageNet: Darknet-19 (Redmon & Farhadi 2017, "YOLO9000: Better, Faster,
Stronger", Sec. 3 "Training for classification", at 224) and Darknet-53 (Redmon & Farhadi 2018,
"YOLOv3: An Incremental Improvement", Table 2, at 256). The reported errors are the registry's facts:
`jaxcnn.model_info("darknet19").reported` and `model_info("darknet53").reported`
(imagenet/top1_error, imagenet/top5_error: the papers print accuracies, stored as 100 - accuracy).

Variants (`:ARG`):
  19, 53   the network (default 19); 53 trains and tests at 256x256, as Table 2 compares.
  smoke    a few steps at 64x64.

Launch, one host:
    python -m jaxcnn.main --config=configs/darknet_imagenet.py --workdir=runs/darknet19
Cloud TPU VM pod slice:
    gcloud compute tpus tpu-vm ssh NAME --zone=ZONE --worker=all \\
        --command="cd jaxcnn && python -m jaxcnn.main \\
        --config=configs/darknet_imagenet.py:53 --workdir=WORKDIR"

The paper's hyper-parameters (YOLO9000 Sec. 3; YOLOv3 trains its classifier "with identical
settings"), as set below: SGD, lr 0.1, momentum 0.9, weight decay 5e-4, 160 epochs; random crops,
rotations and hue / saturation / exposure shifts (preset inception_crop plus extra ops rotate(7),
color); BatchNorm after every conv, leaky ReLU 0.1. Test: one centre crop. Deviations:
  - The paper decays the rate polynomially with power 4; jaxcnn has no polynomial schedule, so a
    cosine decay to 0 over the same 160 epochs stands in for it.
  - Batch 128 (darknet's cfg files; the paper gives none), lr not scaled (reference 128).
  - The rotation range (7 degrees) is darknet's cfg, not the paper's.
  - The paper's follow-up fine-tuning at 448 (10 epochs at lr 1e-3) is not part of this recipe.
  - Weight decay on kernels only; inputs standardised per channel (darknet scales to [0, 1]).
"""

from configs.base import apply_variant, base_config, one_of, parse_arg, smoke_imagenet

VARIANTS = ("19", "53")

TABLE = {  # the README's row (scripts/recipes_table.py); errors: the registry's facts of these models
    "paper": "Redmon & Farhadi 2017; 2018",
    "rows": "YOLO9000 Sec. 3 (224), YOLOv3 Table 2 (256): top-1 / top-5",
    "errors": (("19", "darknet19"), ("53", "darknet53")),
}


def get_config(arg=None):
    tokens, smoke = parse_arg(arg, VARIANTS)
    depth = one_of(tokens, VARIANTS, "19")
    config = base_config()
    config.model.name = f"darknet{depth}"
    config.dataset.name = "imagenet2012"
    config.dataset.train_split, config.dataset.eval_split = "train", "validation"
    config.input.image_size = 224 if depth == "19" else 256
    config.input.train_augment = "inception_crop"
    config.input.extra_augment = "rotate(7),color"
    config.input.shuffle_buffer = 16_384

    config.batch_size = 128
    config.eval_batch_size = 256
    config.num_epochs = 160
    config.optimizer.base_learning_rate = 0.1
    config.optimizer.reference_batch_size = 128
    config.optimizer.momentum = 0.9
    config.optimizer.weight_decay = 5e-4
    config.schedule.name = "cosine"

    config.eval.protocols = ("center",)
    config.eval.crop_ratio = 0.875
    config.eval_every_epochs = 5
    config.checkpoint_every_steps = 1000
    if smoke:
        smoke_imagenet(config, 64)
    return apply_variant(config, "smoke" if smoke else None)
