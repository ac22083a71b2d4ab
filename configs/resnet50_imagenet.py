"""The former ResNet-50 recipe's name, kept so that existing commands and workdirs still load:
configs/resnet_imagenet.py with depth 50 (v1.5) unless ARG names another variant."""

from configs.resnet_imagenet import VARIANTS as VARIANTS
from configs.resnet_imagenet import get_config as _resnet_config


def get_config(arg=None):
    return _resnet_config(arg)
