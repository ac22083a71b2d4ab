"""Published pretrained weights for jaxcnn models: data only, beside the registry (jaxcnn.pretrained
reads it). Every row here is a torchvision release; the figures are torchvision's own (its
`Weights.meta["_metrics"]` and `transforms`), checked against the installed torchvision by
tests/test_pretrained.py.

SHA-256: torchvision puts the first 8 hex digits of each file's SHA-256 in its name (the `-7be5be79`
of `alexnet-owt-7be5be79.pth`), and `torch.hub` checks only that prefix; the full digests are not
published in torchvision's source, so `sha256` holds that prefix and the download checks it.
"""

from __future__ import annotations

import dataclasses

TORCHVISION_URL = "https://download.pytorch.org/models/"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision's GoogLeNet and Inception v3 weights come from Google's releases, trained on inputs
# scaled to [-1, 1]; torchvision's `transform_input=True` re-normalises its ImageNet-normalised input
# inside the model ((x * std + mean - 0.5) / 0.5 per channel). jaxcnn has no such step, so these
# weights' preprocessing is that composition: mean 0.5, std 0.5 on [0, 1] pixels.
HALF = (0.5, 0.5, 0.5)
LICENSE = (
    "BSD-3-Clause (torchvision); trained on ImageNet-1k, whose terms allow non-commercial research use only"
)


@dataclasses.dataclass(frozen=True)
class Weights:
    """One published set of weights for a jaxcnn model.

    Attributes:
      model: the jaxcnn model name; tag: the release's name (torchvision's enum member).
      source, url, sha256: where it comes from; sha256 is the digest's leading hex digits (see above).
      acc1, acc5: published ImageNet-1k validation top-1 / top-5 (%), single center crop.
      resize, crop, interpolation, mean, std: the preprocessing those figures used (resize the shorter
        side, center-crop, normalise [0, 1] pixels).
      classifier_pool: the model's `classifier_pool` that computes what torchvision computed:
        "adaptive" for alexnet, vgg*, googlenet_tv and inception_v3 (torchvision average-pools a
        larger map to the native grid); "global" for the nets that end in a global average pool
        (no option). The published figures are at `crop`, the native size, where "adaptive" and
        jaxcnn's default "dense" give the same logits; at larger inputs only "adaptive" matches.
      license, notes.
    """

    model: str
    tag: str
    source: str
    url: str
    sha256: str
    acc1: float
    acc5: float
    resize: int
    crop: int
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    classifier_pool: str
    license: str
    notes: str = ""


ADAPTIVE_FAMILIES = ("alexnet", "vgg", "googlenet", "inception")


def _tv(model, tag, filename, acc1, acc5, resize, crop, mean=IMAGENET_MEAN, std=IMAGENET_STD, notes=""):
    sha = filename.rsplit("-", 1)[1].split(".")[0]
    pool = "adaptive" if model.startswith(ADAPTIVE_FAMILIES) else "global"
    return Weights(
        model, tag, "torchvision", TORCHVISION_URL + filename, sha, acc1, acc5, resize, crop, "bilinear",
        mean, std, pool, LICENSE, notes,
    )  # fmt: skip


TRANSFORM_INPUT = "torchvision's transform_input folded into mean/std (0.5, 0.5 on [0, 1] pixels)"

# fmt: off
WEIGHTS = (
    _tv("alexnet", "IMAGENET1K_V1", "alexnet-owt-7be5be79.pth", 56.522, 79.066, 256, 224),
    _tv("vgg11", "IMAGENET1K_V1", "vgg11-8a719046.pth", 69.02, 88.628, 256, 224),
    _tv("vgg11_bn", "IMAGENET1K_V1", "vgg11_bn-6002323d.pth", 70.37, 89.81, 256, 224),
    _tv("vgg13", "IMAGENET1K_V1", "vgg13-19584684.pth", 69.928, 89.246, 256, 224),
    _tv("vgg13_bn", "IMAGENET1K_V1", "vgg13_bn-abd245e5.pth", 71.586, 90.374, 256, 224),
    _tv("vgg16", "IMAGENET1K_V1", "vgg16-397923af.pth", 71.592, 90.382, 256, 224),
    _tv("vgg16_bn", "IMAGENET1K_V1", "vgg16_bn-6c64b313.pth", 73.36, 91.516, 256, 224),
    _tv("vgg19", "IMAGENET1K_V1", "vgg19-dcbb9e9d.pth", 72.376, 90.876, 256, 224),
    _tv("vgg19_bn", "IMAGENET1K_V1", "vgg19_bn-c79401a0.pth", 74.218, 91.842, 256, 224),
    _tv("googlenet_tv", "IMAGENET1K_V1", "googlenet-1378be20.pth", 69.778, 89.53, 256, 224,
        mean=HALF, std=HALF, notes=TRANSFORM_INPUT),
    _tv("inception_v3", "IMAGENET1K_V1", "inception_v3_google-0cc3c7bd.pth", 77.294, 93.45, 342, 299,
        mean=HALF, std=HALF, notes=TRANSFORM_INPUT),
    _tv("resnet18", "IMAGENET1K_V1", "resnet18-f37072fd.pth", 69.758, 89.078, 256, 224),
    _tv("resnet34", "IMAGENET1K_V1", "resnet34-b627a593.pth", 73.314, 91.42, 256, 224),
    _tv("resnet50", "IMAGENET1K_V1", "resnet50-0676ba61.pth", 76.13, 92.862, 256, 224),
    _tv("resnet50", "IMAGENET1K_V2", "resnet50-11ad3fa6.pth", 80.858, 95.434, 232, 224),
    _tv("resnet101", "IMAGENET1K_V1", "resnet101-63fe2227.pth", 77.374, 93.546, 256, 224),
    _tv("resnet101", "IMAGENET1K_V2", "resnet101-cd907fc2.pth", 81.886, 95.78, 232, 224),
    _tv("resnet152", "IMAGENET1K_V1", "resnet152-394f9c45.pth", 78.312, 94.046, 256, 224),
    _tv("resnet152", "IMAGENET1K_V2", "resnet152-f82ba261.pth", 82.284, 96.002, 232, 224),
    _tv("wide_resnet50_2", "IMAGENET1K_V1", "wide_resnet50_2-95faca4d.pth", 78.468, 94.086, 256, 224),
    _tv("wide_resnet50_2", "IMAGENET1K_V2", "wide_resnet50_2-9ba9bcbe.pth", 81.602, 95.758, 232, 224),
    _tv("wide_resnet101_2", "IMAGENET1K_V1", "wide_resnet101_2-32ee1156.pth", 78.848, 94.284, 256, 224),
    _tv("wide_resnet101_2", "IMAGENET1K_V2", "wide_resnet101_2-d733dc28.pth", 82.51, 96.02, 232, 224),
    _tv("resnext50_32x4d", "IMAGENET1K_V1", "resnext50_32x4d-7cdf4587.pth", 77.618, 93.698, 256, 224),
    _tv("resnext50_32x4d", "IMAGENET1K_V2", "resnext50_32x4d-1a0047aa.pth", 81.198, 95.34, 232, 224),
    _tv("resnext101_32x8d", "IMAGENET1K_V1", "resnext101_32x8d-8ba56ff5.pth", 79.312, 94.526, 256, 224),
    _tv("resnext101_32x8d", "IMAGENET1K_V2", "resnext101_32x8d-110c445d.pth", 82.834, 96.228, 232, 224),
    _tv("resnext101_64x4d", "IMAGENET1K_V1", "resnext101_64x4d-173b62eb.pth", 83.246, 96.454, 232, 224),
    _tv("densenet121", "IMAGENET1K_V1", "densenet121-a639ec97.pth", 74.434, 91.972, 256, 224),
    _tv("densenet161", "IMAGENET1K_V1", "densenet161-8d451a50.pth", 77.138, 93.56, 256, 224),
    _tv("densenet169", "IMAGENET1K_V1", "densenet169-b2777c0a.pth", 75.6, 92.806, 256, 224),
    _tv("densenet201", "IMAGENET1K_V1", "densenet201-c1103571.pth", 76.896, 93.37, 256, 224),
    _tv("mobilenet_v2", "IMAGENET1K_V1", "mobilenet_v2-b0353104.pth", 71.878, 90.286, 256, 224),
    _tv("mobilenet_v2", "IMAGENET1K_V2", "mobilenet_v2-7ebf99e0.pth", 72.154, 90.822, 232, 224),
)
# fmt: on
