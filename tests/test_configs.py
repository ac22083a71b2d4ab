"""configs/: every recipe is data (no JAX when loaded), passes the trainer's checks, has a smoke variant."""

import importlib.util
import json
import subprocess
import sys

import pytest
from helpers import ROOT

from jaxcnn import config_lib, durations, model_info
from jaxcnn.build import check_config

RECIPES = sorted(p.name for p in (ROOT / "configs").glob("*.py") if p.name not in ("__init__.py", "base.py"))
HEAVY = ("jax", "jaxlib", "flax", "optax", "orbax", "tensorflow", "tensorflow_datasets", "jaxcnn")

# A fresh interpreter loads one recipe by path the way the command line does and calls get_config
# with and without its smoke argument (configs/base.py: base_config and the variant); it prints
# the heavy top-level packages it imported.
LOAD = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("recipe", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
if hasattr(module, "get_config"):
    module.get_config(), module.get_config("smoke")
else:  # configs/base.py
    module.apply_variant(module.base_config(), "smoke")
heavy = set(sys.argv[2].split(","))
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules} & heavy)))
"""


PAPER_RECIPES = (
    "alexnet_imagenet.py",
    "zfnet_imagenet.py",
    "vgg_imagenet.py",
    "resnet_imagenet.py",
    "resnet_cifar10.py",
    "googlenet_imagenet.py",
    "inception_v3_imagenet.py",
)


def _variants(recipe):
    """A recipe's arguments to check: none, smoke, each VARIANTS token alone and with smoke."""
    spec = importlib.util.spec_from_file_location(recipe[:-3], ROOT / "configs" / recipe)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tokens = getattr(module, "VARIANTS", ())
    return ["", ":smoke"] + [f":{t}" for t in tokens] + [f":{t},smoke" for t in tokens]


VARIANT_CASES = [(recipe, arg) for recipe in RECIPES for arg in _variants(recipe)]


def test_there_are_recipes():
    assert {"lenet5_mnist.py", "mnist_convnet.py", "resnet50_imagenet.py", *PAPER_RECIPES} <= set(RECIPES)


@pytest.mark.parametrize("recipe", RECIPES + ["base.py"])
def test_loading_a_recipe_imports_no_jax(recipe):
    path = ROOT / "configs" / recipe
    done = subprocess.run(
        [sys.executable, "-c", LOAD, str(path), ",".join(HEAVY)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == []


@pytest.mark.parametrize("recipe,arg", VARIANT_CASES, ids=[f"{r}{a}" for r, a in VARIANT_CASES])
def test_every_variant_passes_the_trainers_checks(recipe, arg):
    config = config_lib.load_config(str(ROOT / "configs" / recipe) + arg)
    check_config(config)  # raises naming the first bad value (the tests have 2 devices: mesh.model=2)
    if "smoke" in arg:  # seconds on a CPU: a few steps, intervals in steps
        steps = durations.resolve(config, 60_000)
        # lenet5's smoke run takes 120 steps, so that it shows learning; the others take 60.
        assert steps.num_train_steps <= 120 and steps.eval_every == steps.num_train_steps
        assert (
            steps.num_train_steps % steps.checkpoint_every
            == 0
            < steps.checkpoint_every
            < steps.num_train_steps
        )
        assert config.input.image_size <= 75 and config.batch_size <= 64


def test_variants_change_what_they_name():
    load = lambda spec: config_lib.load_config(str(ROOT / "configs" / spec))
    assert load("alexnet_imagenet.py").model.name == "alexnet_2012"
    assert load("alexnet_imagenet.py:2012").mesh.model == 2
    assert load("alexnet_imagenet.py:torchvision").model.name == "alexnet"
    assert load("alexnet_imagenet.py").schedule.name == "plateau"
    assert load("vgg_imagenet.py:E,S256_512").model.name == "vgg19"
    assert load("vgg_imagenet.py:E,S256_512").input.train_augment == "vgg_scale_jitter"
    assert tuple(load("vgg_imagenet.py:S384").eval.scales) == (352, 384, 416)
    assert load("resnet_imagenet.py:101,v1").model.name == "resnet101_v1"
    assert load("resnet_imagenet.py:34,v1").model.name == "resnet34"  # basic blocks: no v1 twin
    assert load("resnet_imagenet.py:plateau").schedule.name == "plateau"
    assert load("resnet50_imagenet.py").to_dict() == load("resnet_imagenet.py").to_dict()
    assert load("resnet_cifar10.py:56,plain").model.name == "plain56"
    assert load("resnet_cifar10.py:val").dataset.train_split == "train[:90%]"
    mnist = load("resnet_cifar10.py:56,plain,mnist")
    assert (mnist.model.name, mnist.dataset.name, mnist.input.train_augment) == ("plain56", "mnist", "none")
    assert load("alexnet_fig1.py").model.to_dict() == {
        "name": "alexnet_fig1",
        "act": "relu",
        "cpu_kernels": "auto",
    }
    assert load("alexnet_fig1.py:tanh,cifar10").model.act == "tanh"
    assert load("alexnet_fig1.py:tanh,cifar10").dataset.name == "cifar10"
    assert load("inception_v3_imagenet.py:no_aux").model.aux_logits is False


def test_conflicting_or_unknown_variants_are_named():
    with pytest.raises(ValueError, match="config arguments 101, 50 exclude each other"):
        config_lib.load_config(str(ROOT / "configs" / "resnet_imagenet.py:50,101"))
    with pytest.raises(ValueError, match="unknown config argument 'F'; allowed: A, A_LRN, B"):
        config_lib.load_config(str(ROOT / "configs" / "vgg_imagenet.py:F"))


@pytest.mark.parametrize("recipe", PAPER_RECIPES)
def test_paper_recipes_name_their_paper_launch_commands_and_registry_errors(recipe):
    config = config_lib.load_config(str(ROOT / "configs" / recipe))
    text = (ROOT / "configs" / recipe).read_text()
    info = model_info(config.model.name)
    assert info.reported, f"{config.model.name} has no reported errors in the registry"
    assert f'model_info("{config.model.name}").reported' in text or config.model.name == "resnet50"
    assert f"python -m jaxcnn.main --config=configs/{recipe}" in text
    assert "gcloud compute tpus tpu-vm ssh" in text and "--worker=all" in text
    assert "Deviations:" in text


def test_the_readme_lists_every_paper_recipe_with_the_registrys_errors():
    readme = (ROOT / "README.md").read_text()
    for recipe in PAPER_RECIPES:
        row = next((line for line in readme.splitlines() if line.startswith(f"| `{recipe}")), None)
        assert row is not None, f"README's recipe table has no row for {recipe}"
        for arg in _variants(recipe):
            config = config_lib.load_config(str(ROOT / "configs" / recipe) + arg)
            for value in model_info(config.model.name).reported.values():
                assert f"{value:g}" in row, (recipe, arg, value)


def test_recipes_state_no_step_counts_computed_from_a_batch_size():
    for recipe in RECIPES:
        text = (ROOT / "configs" / recipe).read_text()
        assert "steps_per_epoch" not in text and "// config.batch_size" not in text, recipe


def test_an_unknown_variant_is_named():
    with pytest.raises(ValueError, match="unknown config argument 'smok'; allowed: smoke"):
        config_lib.load_config(str(ROOT / "configs" / "lenet5_mnist.py:smok"))
