"""The benchmarked networks: each jaxcnn model, its peers' equivalents and a default batch size.

A row pairs a jaxcnn registry name with the network a researcher would otherwise take: the Keras 3
application (JAX backend) and the torchvision model of the same architecture (run eagerly by the
"torch" peer, under torch.compile by "torch_compile"), None where the peer has none. Keras'
ResNet50 is He et al.'s v1 network (stride on the first 1x1, conv biases), so it is paired with
jaxcnn's `resnet50_v1`; torchvision's resnet50 is v1.5, paired with `resnet50`.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Workload:
    """One benchmarked network.

    Attributes:
      model: the jaxcnn registry name.
      keras: the keras.applications constructor name, or None.
      torch: the torchvision.models constructor name, or None.
      batch_size: default batch: small enough that one train step takes seconds on 2 CPU cores.
      note: how the peers' networks differ from jaxcnn's, for the README.
    """

    model: str
    keras: str | None
    torch: str | None
    batch_size: int
    note: str = ""


WORKLOADS = (
    Workload("lenet5", None, None, 256, "no peer has LeNet-5"),
    Workload("alexnet", None, "alexnet", 32),
    Workload("vgg16", "VGG16", "vgg16", 8),
    Workload(
        "googlenet",
        None,
        "googlenet",
        16,
        "torchvision's GoogLeNet has BatchNorm and no LRN; jaxcnn's is the paper's (LRN, no BN)",
    ),
    Workload(
        "inception_v3",
        "InceptionV3",
        "inception_v3",
        8,
        "jaxcnn and torchvision train the auxiliary head; Keras' InceptionV3 has none",
    ),
    Workload("resnet18", None, "resnet18", 32),
    Workload("resnet50", None, "resnet50", 16, "v1.5 (stride on the 3x3), as torchvision"),
    Workload(
        "resnet50_v1",
        "ResNet50",
        None,
        16,
        "v1 (stride on the first 1x1); Keras' ResNet50 adds conv biases (+79,680 params, 0.3%)",
    ),
    Workload("densenet121", "DenseNet121", "densenet121", 16),
    Workload("mobilenet_v2", "MobileNetV2", "mobilenet_v2", 32),
)

PEERS = ("jaxcnn", "keras", "torch", "torch_compile")
CPU_PEERS = ("jaxcnn", "keras", "torch")  # the CPU table's columns
ACCELERATOR_PEERS = ("jaxcnn", "torch", "torch_compile")  # the accelerator row's columns


def get(model: str) -> Workload:
    """The row of `model`; a ValueError names the benchmarked models otherwise."""
    for w in WORKLOADS:
        if w.model == model:
            return w
    raise ValueError(f"model {model!r} is not benchmarked; known: {', '.join(w.model for w in WORKLOADS)}")


def peer_network(workload: Workload, peer: str) -> str | None:
    """The name of `peer`'s network for this row (the jaxcnn name for jaxcnn), None if it has none."""
    if peer not in PEERS:
        raise ValueError(f"unknown peer {peer!r}; known: {', '.join(PEERS)}")
    names = {"jaxcnn": workload.model, "keras": workload.keras, "torch": workload.torch}
    return names.get(peer, workload.torch)  # torch_compile: the torchvision network, compiled
