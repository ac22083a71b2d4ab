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
# with and without its smoke argument and each of its VARIANTS (configs/base.py: base_config and the
# variant); it prints
# the heavy top-level packages it imported.
LOAD = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("recipe", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
if hasattr(module, "get_config"):
    module.get_config(), module.get_config("smoke")
    for token in getattr(module, "VARIANTS", ()):  # every argument, alone and with smoke
        module.get_config(token), module.get_config(token + ",smoke")
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
    "inception_v4_imagenet.py",
    "wrn_cifar.py",
    "resnext_imagenet.py",
    "senet_imagenet.py",
    "densenet_imagenet.py",
    "mobilenet_imagenet.py",
    "darknet_imagenet.py",
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
    assert load("inception_v4_imagenet.py:resnet_v2").model.name == "inception_resnet_v2"
    assert load("wrn_cifar.py").model.dropout_rate == 0.0
    assert load("wrn_cifar.py:dropout").model.dropout_rate == 0.3
    assert load("wrn_cifar.py:cifar100").dataset.name == "cifar100"
    assert load("wrn_cifar.py").schedule.decay_factor == 0.2 and load("wrn_cifar.py").optimizer.nesterov
    eight = load("resnext_imagenet.py:101,8x14d").model
    assert (eight.name, eight.groups, eight.base_width) == ("resnext101_32x4d", 8, 14)
    assert load("resnext_imagenet.py:1x64d").model.name == "resnet50"
    assert "groups" not in load("resnext_imagenet.py:64x4d").model  # the registered net, as it is
    assert load("resnext_imagenet.py:64x4d").model.name == "resnext101_64x4d"
    assert load("senet_imagenet.py:resnext50,r8").model.to_dict() == {
        "name": "se_resnext50_32x4d", "cpu_kernels": "auto", "se_reduction": 8,
    }  # fmt: skip
    assert load("senet_imagenet.py:no_se").model.se_reduction == 0
    small = load("mobilenet_imagenet.py:v2,0.5,160")
    assert (small.model.name, small.model.width_multiplier, small.input.image_size) == (
        "mobilenet_v2",
        0.5,
        160,
    )
    assert load("darknet_imagenet.py:53").input.image_size == 256
    assert load("densenet_imagenet.py:161").batch_size == 128


def test_conflicting_or_unknown_variants_are_named():
    with pytest.raises(ValueError, match="config argument 64x4d is a 101-layer net; add 101, not 50"):
        config_lib.load_config(str(ROOT / "configs" / "resnext_imagenet.py:50,64x4d"))
    with pytest.raises(ValueError, match="config arguments r16, r8 exclude each other"):
        config_lib.load_config(str(ROOT / "configs" / "senet_imagenet.py:r8,r16"))
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


def _recipes_table():
    spec = importlib.util.spec_from_file_location("recipes_table", ROOT / "scripts" / "recipes_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_recipes_table_is_generated_from_the_recipes():
    table = _recipes_table()
    readme = (ROOT / "README.md").read_text()
    assert table.render(readme) == readme, (
        "README.md's recipe table is stale: python scripts/recipes_table.py"
    )
    listed = {name for name, _ in table.tabled_recipes()}
    assert set(PAPER_RECIPES) | {"lenet5_mnist.py", "mnist_convnet.py"} <= listed
    # The generator reads the registry: a changed fact changes the table.
    row = table.row("wrn_cifar.py", table.load_recipe(ROOT / "configs" / "wrn_cifar.py"))
    assert "| 4.17 / 20.5 |" in row and "`python -m jaxcnn.main --config=configs/wrn_cifar.py " in row


def test_a_table_entry_without_reported_errors_is_named():
    with pytest.raises(ValueError, match="model 'densenet161' has no reported errors"):
        _recipes_table().errors((("161", "densenet161"),))


def test_recipes_state_no_step_counts_computed_from_a_batch_size():
    for recipe in RECIPES:
        text = (ROOT / "configs" / recipe).read_text()
        assert "steps_per_epoch" not in text and "// config.batch_size" not in text, recipe


def test_an_unknown_variant_is_named():
    with pytest.raises(ValueError, match="unknown config argument 'smok'; allowed: smoke"):
        config_lib.load_config(str(ROOT / "configs" / "lenet5_mnist.py:smok"))
