"""Each paper recipe's smoke variant trains and evaluates with its paper's protocols on a fake
ILSVRC2012 / CIFAR-10 in the real on-disk layout (prepared by TFDS's real builders). The two
cheapest run by default; the others are marked slow."""

import numpy as np
import pytest
from helpers import ROOT

from jaxcnn import config_lib, evaluate
from jaxcnn.metric_writer import read_metrics
from jaxcnn.train import train_and_evaluate

SLOW = pytest.mark.slow
CASES = [
    "resnet_cifar10.py:smoke",
    pytest.param("alexnet_imagenet.py:smoke", marks=SLOW),  # the 2012 network and the plateau rule
    pytest.param("resnet_cifar10.py:110,plain,val,smoke", marks=SLOW),
    pytest.param("alexnet_imagenet.py:2012,smoke", marks=SLOW),  # towers on the model axis
    pytest.param("alexnet_imagenet.py:torchvision,smoke", marks=SLOW),
    pytest.param("zfnet_imagenet.py:smoke", marks=SLOW),
    pytest.param("vgg_imagenet.py:A_LRN,S256_512,smoke", marks=SLOW),
    pytest.param("googlenet_imagenet.py:smoke", marks=SLOW),
    pytest.param("inception_v3_imagenet.py:smoke", marks=SLOW),
    pytest.param("inception_v4_imagenet.py:smoke", marks=SLOW),  # with the running average (eval_ema)
    pytest.param("inception_v4_imagenet.py:resnet_v2,smoke", marks=SLOW),
    pytest.param("wrn_cifar.py:dropout,smoke", marks=SLOW),
    pytest.param("resnext_imagenet.py:smoke", marks=SLOW),
    pytest.param("resnext_imagenet.py:8x14d,smoke", marks=SLOW),
    pytest.param("senet_imagenet.py:smoke", marks=SLOW),
    pytest.param("densenet_imagenet.py:smoke", marks=SLOW),  # centre and 10 crops
    pytest.param("mobilenet_imagenet.py:smoke", marks=SLOW),
    pytest.param("mobilenet_imagenet.py:v2,0.5,smoke", marks=SLOW),
    pytest.param("darknet_imagenet.py:smoke", marks=SLOW),
    pytest.param("darknet_imagenet.py:53,smoke", marks=SLOW),
]
FAKE_SIZES = {"imagenet2012": 6, "cifar10": 7}  # the fixtures' evaluation examples
FAKE_SIZES_VAL = {"cifar10": 2}  # train[90%:] of the fake's 20 training records


@pytest.mark.parametrize("spec", CASES)
def test_smoke_variant_trains_and_evaluates_with_its_protocols(spec, request, tmp_path):
    config = config_lib.load_config(str(ROOT / "configs" / spec))
    fixture = {"imagenet2012": "fake_imagenet", "cifar10": "fake_cifar10"}[config.dataset.name]
    config.dataset.data_dir = request.getfixturevalue(fixture)[0]
    config.num_train_steps, config.log_every_steps = 4, 2
    config.eval_every_steps = config.checkpoint_every_steps = 2
    result = train_and_evaluate(config, str(tmp_path))

    sizes = FAKE_SIZES_VAL if "val" in spec else FAKE_SIZES
    prefixes = [evaluate.metric_prefix(p) for p in config.eval.protocols]
    if config.ema_decay:
        prefixes.append("eval_ema")
    for prefix in prefixes:
        assert result[f"{prefix}/num_examples"] == sizes[config.dataset.name], prefix
        assert 0.0 <= result[f"{prefix}/top1_error"] <= 1.0 and np.isfinite(result[f"{prefix}/loss"])
    records = read_metrics(str(tmp_path))
    assert [r["step"] for r in records if "eval/top1_error" in r] == [2, 4]
    rates = [r["train/learning_rate"] for r in records if "train/learning_rate" in r]
    assert len(rates) == 2 and all(np.isfinite(rates)) and rates[0] > 0
    assert (tmp_path / "checkpoints" / "4").is_dir()
