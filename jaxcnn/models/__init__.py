"""Model families; importing this package registers every model in jaxcnn.registry."""

from jaxcnn.models import (  # noqa: F401
    alexnet,
    darknet,
    densenet,
    googlenet,
    inception,
    lenet,
    mobilenet,
    resnet,
    unet,
    vgg,
)
