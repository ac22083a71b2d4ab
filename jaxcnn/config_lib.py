"""Config files on the command line: `--config=configs/X.py[:ARG]` and `--config.KEY=VALUE` overrides.

Each mistake ends in one line naming it: a file that does not exist, a file that does not run (its
line named), an unknown key (with the closest known key), a value of the wrong type. The sections'
own checks (names, ranges, divisibility) belong to the modules that consume them
(jaxcnn.build.check_config).
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import os
import sys
import traceback

import ml_collections

FLAG = "--config"


def load_config(spec: str) -> ml_collections.ConfigDict:
    """Loads "configs/NAME.py[:ARG]" the way --config does: get_config(ARG) of that file.

    Raises:
      FileNotFoundError: the file does not exist.
      ValueError: the file does not run or has no get_config (one line, with the file's line).
    """
    path, _, arg = spec.partition(":")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"config file {path!r} does not exist")
    try:
        module_spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        get_config = getattr(module, "get_config", None)
        if get_config is None:
            raise ValueError(f"config file {path} defines no get_config(arg=None)")
        config = get_config(arg or None)
    except SyntaxError as e:
        raise ValueError(f"config file {e.filename} line {e.lineno}: {e.msg}") from None
    except ValueError:
        raise
    except Exception as e:  # the recipe raised: name its line, not the loader's frames
        line = [f.lineno for f in traceback.extract_tb(e.__traceback__) if _same(f.filename, path)]
        where = f" line {line[-1]}" if line else ""
        raise ValueError(f"config file {path}{where}: {type(e).__name__}: {e}") from None
    if not isinstance(config, ml_collections.ConfigDict):
        raise ValueError(f"get_config of {path} returned {type(config).__name__}, not a ConfigDict")
    return config


def _same(a: str, b: str) -> bool:
    return os.path.abspath(a) == os.path.abspath(b)


def known_keys(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
    """Every leaf key of `config`, dotted ("optimizer.base_learning_rate")."""
    keys = []
    for name, value in config.items():
        if isinstance(value, ml_collections.ConfigDict):
            keys += known_keys(value, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


def override(config: ml_collections.ConfigDict, key: str, text: str) -> None:
    """Sets dotted `key` of `config` from the command-line string `text`, parsed as the key's type.

    Raises:
      ValueError: an unknown key (naming the closest known one) or a value of the wrong type.
    """
    *path, last = key.split(".")
    section = config
    for depth, name in enumerate([*path, last]):
        if not isinstance(section, ml_collections.ConfigDict) or name not in section:
            close = difflib.get_close_matches(key, known_keys(config), n=1, cutoff=0.5)
            hint = f"; did you mean config.{close[0]}?" if close else " (configs/base.py lists the keys)"
            raise ValueError(f"unknown config key config.{key}{hint}")
        if depth < len(path):
            section = section[name]
    current = section[last]
    if isinstance(current, ml_collections.ConfigDict):
        raise ValueError(
            f"config.{key} is a section; set one of its keys: {', '.join(known_keys(current, key + '.'))}"
        )
    section[last] = _parse(key, text, current)


def _parse(key: str, text: str, current):
    """`text` as the type of the key's current value (bool, int, float, str, tuple or None)."""
    kind = type(current)
    try:
        if kind is bool:
            lowered = text.lower()
            if lowered not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return lowered in ("true", "1")
        if kind in (int, float):
            return kind(text)
        if kind is str:
            return text
        if kind in (tuple, list):
            return kind(_sequence(text))
        return _literal(text)  # None or another type: a Python literal, else the string
    except ValueError:
        kind_name = ("an " if kind.__name__[0] in "aeiou" else "a ") + kind.__name__
        raise ValueError(f"--config.{key}={text}: expected {kind_name} like {current!r}") from None


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _sequence(text: str) -> tuple:
    """ "30,60", "(30, 60)", "center,ten_crop", "[center, ten_crop]", "ten_crop" or "7" -> a tuple."""
    value = _literal(text)
    if isinstance(value, (tuple, list)):
        return tuple(value)
    inner = text.strip()
    if inner[:1] + inner[-1:] in ("()", "[]"):  # unquoted words in brackets: (center, ten_crop)
        inner = inner[1:-1]
    if "," in inner:
        return tuple(_literal(part.strip()) for part in inner.split(",") if part.strip())
    return () if inner.strip() == "" else (_literal(inner.strip()),)


def from_command_line(argv: list[str], default=None) -> tuple[ml_collections.ConfigDict, list[str]]:
    """Takes --config=FILE[:ARG] and every --config.KEY=VALUE (or --config.KEY VALUE) out of argv.

    `default`: called with the remaining argv for the config when there is no --config (None: the
    flag is required); it returns a ConfigDict or None.

    Returns:
      The config with the overrides applied in order, and the rest of argv for absl's flags.

    Raises:
      FileNotFoundError, ValueError: one line naming the file, the key or the value.
    """
    rest, spec, overrides = [argv[0]], None, []
    args = iter(argv[1:])
    for arg in args:
        name, has_value, value = arg.partition("=")
        if name.startswith("-" + FLAG):  # absl takes -flag and --flag alike
            name = name[1:]
        if name != FLAG and not name.startswith(FLAG + "."):
            rest.append(arg)
            continue
        if not has_value:
            value = next(args, None)
            if value is None:
                raise ValueError(f"{name} needs a value")
        if name == FLAG:
            spec = value
        else:
            overrides.append((name[len(FLAG) + 1 :], value))
    config = load_config(spec) if spec is not None else (default(rest) if default else None)
    if config is None:
        raise ValueError("--config=configs/NAME.py[:ARG] is required")
    for key, value in overrides:
        override(config, key, value)
    return config, rest


def config_or_exit(
    argv: list[str] | None = None, default=None
) -> tuple[ml_collections.ConfigDict, list[str]]:
    """from_command_line(argv or sys.argv, default); a mistake ends the command with one `error:` line."""
    try:
        return from_command_line(sys.argv if argv is None else argv, default)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
