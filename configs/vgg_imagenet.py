"""VGG on ImageNet (Simonyan & Zisserman 2015, "Very Deep Convolutional Networks for Large-Scale
Image Recognition"): configurations A-E of Table 1, trained as Sec. 3.1, tested as Sec. 3.2.
Table 3 (single-scale test, Q = S) and Table 4 (multi-scale test) rows; the registry holds Table 3's
S = 256 errors of each configuration: `jaxcnn.model_info("vgg16").reported`
(imagenet/top1_error, imagenet/top5_error).

Variants (`:ARG`, comma-separated, e.g. `:E,S256_512`):
  A, A_LRN, B, C, D, E   the configuration (default D); registry vgg11, vgg11_lrn, vgg13, vgg16_c,
                         vgg16, vgg19.
  S256, S384, S256_512   the training scale (default S256): fixed S = 256 (preset vgg_s256), fixed
                         S = 384 (vgg_s384), or scale jittering S in [256, 512] (vgg_scale_jitter).
                         The multi-scale test scales follow Table 4: Q in {S - 32, S, S + 32} for a
                         fixed S, {256, 384, 512} for the jittered one.
  step                   the rates on fixed epochs (x0.1 at 30, 50, 65 of 74) instead of on plateaus.
  smoke                  configuration A with small fc layers at 32x32, a few steps.

Launch, one host:
    python -m jaxcnn.main --config=configs/vgg_imagenet.py:D,S256_512 --workdir=runs/vgg16_jitter
    python -m jaxcnn.evaluate --config=configs/vgg_imagenet.py:D,S256_512 --workdir=runs/vgg16_jitter \\
        --protocols=center,multi_scale
Cloud TPU VM pod slice:
    gcloud compute tpus tpu-vm ssh NAME --zone=ZONE --worker=all \\
        --command="cd jaxcnn && python -m jaxcnn.main \\
        --config=configs/vgg_imagenet.py:D --workdir=WORKDIR"

The paper's hyper-parameters, as set below: SGD batch 256, momentum 0.9, weight decay 5e-4,
dropout 0.5 on fc6/fc7, lr 0.01 divided by 10 when the validation accuracy stopped improving
(3 times), stopped after 370K iterations (74 epochs); random 224 crops of the image rescaled to
shorter side S, flips and AlexNet's RGB colour shift. Deviations:
  - Initialisation: Glorot uniform for every configuration (the paper's footnote reports it equal
    to training A first and initialising the deeper nets from A's layers, which is not offered).
  - The paper trains S = 384 from the S = 256 weights (lr 1e-3) and the jittered nets from S = 384;
    here each variant trains from scratch for the same schedule.
  - Plateau patience (not in the paper): an evaluation every epoch, 3 without improvement.
  - Test: single scale is the central crop (crop_ratio 224/256, or 224/384 for S = 384), not the
    paper's dense evaluation of the whole Q x W image; multi_scale evaluates the central Q x Q
    square densely (jaxcnn.data.views). Standardised inputs (per-channel mean/std), not mean RGB only.
"""

from configs.base import apply_variant, base_config, one_of, parse_arg, smoke_imagenet

NETWORKS = {"A": "vgg11", "A_LRN": "vgg11_lrn", "B": "vgg13", "C": "vgg16_c", "D": "vgg16", "E": "vgg19"}
SCALES = {  # training preset, multi-scale test sides (Table 4)
    "S256": ("vgg_s256", (224, 256, 288)),
    "S384": ("vgg_s384", (352, 384, 416)),
    "S256_512": ("vgg_scale_jitter", (256, 384, 512)),
}
VARIANTS = (*NETWORKS, *SCALES, "step")

TABLE = {  # the README's row (scripts/recipes_table.py); errors: the registry's facts of these models
    "paper": "Simonyan & Zisserman 2015",
    "rows": "Table 3 (single scale, S = 256): top-1 / top-5; Table 4 (multi-scale test)",
    "errors": (
        ("A", "vgg11"),
        ("A-LRN", "vgg11_lrn"),
        ("B", "vgg13"),
        ("C", "vgg16_c"),
        ("D", "vgg16"),
        ("E", "vgg19"),
    ),
}


def get_config(arg=None):
    tokens, smoke = parse_arg(arg, VARIANTS)
    network = one_of(tokens, tuple(NETWORKS), "D")
    scale = one_of(tokens, tuple(SCALES), "S256")
    config = base_config()
    config.model.name = NETWORKS[network]
    config.dataset.name = "imagenet2012"
    config.dataset.train_split, config.dataset.eval_split = "train", "validation"
    config.input.image_size = 224
    config.input.train_augment, config.eval.scales = SCALES[scale]
    config.input.shuffle_buffer = 16_384

    config.batch_size = 256
    config.eval_batch_size = 256
    config.num_epochs = 74  # 370K iterations of 256
    config.optimizer.base_learning_rate = 0.01
    config.optimizer.reference_batch_size = 256
    config.optimizer.momentum = 0.9
    config.optimizer.weight_decay = 5e-4
    config.schedule.name = "plateau"
    config.schedule.patience = 3
    config.schedule.max_reductions = 3

    config.eval.protocols = ("center", "multi_scale")
    config.eval.crop_ratio = 224 / (384 if scale == "S384" else 256)
    config.eval_every_epochs = 1
    config.checkpoint_every_steps = 2000
    config.checkpoint.keep_best = 1
    if "step" in tokens:
        config.schedule.name, config.schedule.boundaries_epochs = "step", (30, 50, 65)
    if smoke:
        smoke_imagenet(config, 32)
        # Configuration A's convolutions with small fully connected layers: seconds on a CPU.
        config.model.name = NETWORKS[network if network != "D" or "D" in tokens else "A"]
        config.model.hidden = (64, 64)
        config.model.adaptive_pool = (1, 1)
    return apply_variant(config, "smoke" if smoke else None)
