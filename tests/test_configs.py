"""configs/: every recipe is data (no JAX when loaded), passes the trainer's checks, has a smoke variant."""

import json
import subprocess
import sys

import pytest
from helpers import ROOT

from jaxcnn import config_lib, durations
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


def test_there_are_recipes():
    assert {"lenet5_mnist.py", "mnist_convnet.py", "resnet50_imagenet.py"} <= set(RECIPES)


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


@pytest.mark.parametrize("arg", ["", ":smoke"])
@pytest.mark.parametrize("recipe", RECIPES)
def test_every_recipe_passes_the_trainers_checks(recipe, arg):
    config = config_lib.load_config(str(ROOT / "configs" / recipe) + arg)
    check_config(config)  # raises naming the first bad value
    if arg:  # seconds on a CPU: a few steps, intervals in steps
        steps = durations.resolve(config, 60_000)
        # lenet5's smoke run takes 120 steps, so that it shows learning; the others take 60.
        assert steps.num_train_steps <= 120 and steps.eval_every == steps.num_train_steps
        assert (
            steps.num_train_steps % steps.checkpoint_every
            == 0
            < steps.checkpoint_every
            < steps.num_train_steps
        )


def test_recipes_state_no_step_counts_computed_from_a_batch_size():
    for recipe in RECIPES:
        text = (ROOT / "configs" / recipe).read_text()
        assert "steps_per_epoch" not in text and "// config.batch_size" not in text, recipe


def test_an_unknown_variant_is_named():
    with pytest.raises(ValueError, match="unknown config argument 'smok'; allowed: smoke"):
        config_lib.load_config(str(ROOT / "configs" / "lenet5_mnist.py:smok"))
