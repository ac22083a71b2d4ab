"""jaxcnn.config_lib: --config files and --config.KEY=VALUE overrides, each mistake one line."""

import re

import pytest
from helpers import ROOT

from jaxcnn import config_lib

LENET = str(ROOT / "configs" / "lenet5_mnist.py")


def _parse(*args):
    return config_lib.from_command_line(["prog", f"--config={LENET}", *args])


def test_overrides_take_the_type_of_the_key():
    config, rest = _parse(
        "--config.batch_size=128",
        "--config.optimizer.base_learning_rate=1",  # an int given to a float key
        "--config.optimizer.nesterov=true",
        "--config.model.name",  # absl's "--flag value" form
        "lenet5_modern",
        "--config.eval.protocols=center,ten_crop",
        "--config.schedule.boundaries_epochs=(30, 60)",
        "--workdir=/tmp/x",
    )
    assert rest == ["prog", "--workdir=/tmp/x"]
    assert config.batch_size == 128 and isinstance(config.batch_size, int)
    lr = config.optimizer.base_learning_rate
    assert lr == 1.0 and isinstance(lr, float)
    assert config.optimizer.nesterov is True and config.model.name == "lenet5_modern"
    assert config.eval.protocols == ("center", "ten_crop")
    assert config.schedule.boundaries_epochs == (30, 60)


BAD = [
    (
        ["--config.optimizer.base_learnig_rate=0.1"],
        "unknown config key config.optimizer.base_learnig_rate; "
        "did you mean config.optimizer.base_learning_rate?",
    ),
    (["--config.bach_size=64"], "did you mean config.batch_size?"),
    (["--config.batch_size=abc"], "--config.batch_size=abc: expected an int like 32"),
    (["--config.optimizer.nesterov=maybe"], "--config.optimizer.nesterov=maybe: expected a bool like False"),
    (["--config.optimizer=0.1"], "config.optimizer is a section; set one of its keys: optimizer.base_"),
    (["--config.batch_size"], "--config.batch_size needs a value"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[b[0][0] for b in BAD])
def test_bad_overrides_are_named(args, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        _parse(*args)


def test_config_is_required():
    with pytest.raises(ValueError, match=re.escape("--config=configs/NAME.py[:ARG] is required")):
        config_lib.from_command_line(["prog", "--workdir=/tmp/x"])


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="config file '.*nope.py' does not exist"):
        config_lib.load_config(str(tmp_path / "nope.py"))


@pytest.mark.parametrize(
    "source,message",
    [
        ("def get_config(arg=None):\n    x = (\n", "line 2: '(' was never closed"),
        ("import os\n\ndef get_config(arg=None):\n    return 1 / 0\n", "line 4: ZeroDivisionError"),
        ("X = 1\n", "defines no get_config(arg=None)"),
        ("def get_config(arg=None):\n    return {}\n", "returned dict, not a ConfigDict"),
    ],
)
def test_a_file_that_does_not_load_names_its_line(tmp_path, source, message):
    path = tmp_path / "recipe.py"
    path.write_text(source)
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        config_lib.load_config(str(path))
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("center,ten_crop", ("center", "ten_crop")),
        ("center, ten_crop", ("center", "ten_crop")),
        ("[center,ten_crop]", ("center", "ten_crop")),  # today: ("[center", "ten_crop]")
        ("(center, ten_crop)", ("center", "ten_crop")),
        ("('center', 'ten_crop')", ("center", "ten_crop")),
        ("ten_crop", ("ten_crop",)),
        ("", ()),
    ],
)
def test_tuple_overrides_take_every_spelling_of_a_list(text, expected):
    config, _ = _parse(f"--config.eval.protocols={text}")
    assert config.eval.protocols == expected
