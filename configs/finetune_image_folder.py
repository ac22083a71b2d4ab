"""Transfer learning on any image folder (ROOT/train/LABEL/*.jpg, ROOT/test/LABEL/*.jpg): a network
pretrained on ImageNet (torchvision's weights, jaxcnn.list_pretrained) fine-tuned, or its last layer
retrained, for the folder's classes. No paper table: the common recipe (Yosinski et al. 2014, "How
transferable are features in deep neural networks?"; Kornblith et al. 2019, "Do Better ImageNet
Models Transfer Better?"): SGD with momentum at a small rate, the classifier replaced because the
number of classes differs, the pretrained preprocessing (ImageNet mean/std, centre crop 224/256).

Variants (`:ARG`, comma-separated):
  resnet50      ResNet-50, 224x224 (the default)
  resnet18      ResNet-18, 224x224
  inception_v3  Inception v3, 299x299, auxiliary head (fresh too) weighted 0.3
  probe         a linear probe: only the classifier trains, the backbone (and its BatchNorm
                statistics) frozen; a 10x larger rate
  smoke         a few steps at a small input, seconds on a CPU

Launch (downloads the weights into ~/.cache/jaxcnn/weights):
    python -m jaxcnn.main --config=configs/finetune_image_folder.py:resnet50 \\
        --config.dataset.folder=ROOT --workdir=runs/ft_resnet50
Offline, from a torchvision file (torch.save(model.state_dict(), "resnet50.pth")):
    ... --config.init.weights= --config.init.path=resnet50.pth
From another jaxcnn run: --config.init.weights= --config.init.workdir=runs/other.

Deviation to know: torchvision's Inception v3 weights were trained on inputs scaled to [-1, 1]
(mean/std 0.5); the folder pipeline standardises with ImageNet's mean/std, a per-channel affine change
of the input that fine-tuning absorbs (jaxcnn.evaluate --weights and jaxcnn.extract apply the exact one).
"""

from configs.base import apply_variant, base_config, one_of, parse_arg, smoke_imagenet

MODELS = ("resnet50", "resnet18", "inception_v3")
VARIANTS = (*MODELS, "probe")


def get_config(arg=None):
    tokens, smoke = parse_arg(arg, VARIANTS)
    model = one_of(tokens, MODELS, "resnet50")
    config = base_config()
    config.model.name = model
    config.dataset.name = "image_folder"
    config.dataset.folder = ""  # ROOT: --config.dataset.folder=ROOT
    config.dataset.train_split, config.dataset.eval_split = "train", "test"
    config.input.image_size = 299 if model == "inception_v3" else 224
    config.input.normalize = "standardize"  # ImageNet's mean/std, as the weights were trained
    config.input.train_augment = "inception_crop"  # random-resized crop and flip (torchvision's)
    config.input.shuffle_buffer = 10_000
    config.eval.crop_ratio = 0.875  # centre 224 of 256 (299 of 342)

    config.init.weights = "latest"  # the newest row of jaxcnn.list_pretrained(model)
    config.init.head = "auto"  # fresh when the folder's classes are not ImageNet's 1000
    config.init.freeze_backbone = "probe" in tokens

    config.batch_size = 32
    config.eval_batch_size = 64
    config.num_epochs = 10
    config.optimizer.momentum = 0.9
    # lr = base * batch_size / 256: 0.00125 at batch 32 for the whole network, 10x for a probe.
    config.optimizer.base_learning_rate = 0.1 if "probe" in tokens else 0.01
    config.optimizer.reference_batch_size = 256
    config.optimizer.weight_decay = 0.0 if "probe" in tokens else 1e-4
    config.schedule.name = "cosine"
    config.loss.aux_weight = 0.3
    config.eval_every_epochs = 1
    config.checkpoint_every_epochs = 1
    if smoke:
        smoke_imagenet(config, 75 if model == "inception_v3" else 64)
    return apply_variant(config, "smoke" if smoke else None)
