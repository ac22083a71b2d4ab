"""Fine-tuning: a run that starts from pretrained weights or another run's checkpoint (config.init).

    --config.init.weights=IMAGENET1K_V2       a row of jaxcnn.list_pretrained(model) ("latest": the newest)
    --config.init.path=resnet50.pth           a torchvision state-dict file (converted by jaxcnn.pretrained)
    --config.init.workdir=runs/a              another jaxcnn run: its latest params and BatchNorm statistics
    --config.init.head=auto|replace|keep      the classifier: kept when its shape fits the new classes
                                              (auto), always fresh (replace), or kept and required to fit
    --config.init.freeze_backbone=True        a linear probe: only the classifier trains
    --config.init.backbone_lr_multiplier=0.1  the backbone at a tenth of the classifier's rate

The classifier ("head") is found without per-model code: the parameters whose shapes change with
num_classes (the final fc, and an auxiliary head's). Everything else is the backbone and must come
from the source with its shape, or the run stops with a one-line error naming the variable. A frozen
backbone gets no update (optax.set_to_zero: no step, no weight decay, no optimizer state) and its
BatchNorm layers normalise with their running statistics in training too, never updating them, so
its parameters and statistics stay bitwise what was loaded. `build.build` calls this module.
"""

from __future__ import annotations

import os

import jax
import numpy as np
from flax import traverse_util

from jaxcnn import checkpoint, optim, pretrained, registry
from jaxcnn.layers import BatchNorm

HEADS = ("auto", "replace", "keep")
SOURCES = ("weights", "path", "workdir")


def _init(config):
    return config.get("init") or {}


def source_of(config) -> str | None:
    """The config.init key that names the initial weights, or None (a fresh initialisation)."""
    init = _init(config)
    named = [k for k in SOURCES if init.get(k)]
    return named[0] if named else None


def check_config(config) -> None:
    """Checks config.init before anything is opened or compiled: one ValueError/FileNotFoundError."""
    init = _init(config)
    if not init:
        return
    named = [k for k in SOURCES if init.get(k)]
    if len(named) > 1:
        raise ValueError(f"config.init names {' and '.join('init.' + k for k in named)}; set at most one")
    head, freeze, multiplier = (
        init.get("head", "auto"),
        init.get("freeze_backbone", False),
        init.get("backbone_lr_multiplier", 1.0),
    )
    if head not in HEADS:
        raise ValueError(f"config.init.head={head!r}; allowed: {', '.join(HEADS)}")
    if not isinstance(freeze, bool):
        raise ValueError(f"config.init.freeze_backbone must be True or False, got {freeze!r}")
    if isinstance(multiplier, bool) or not isinstance(multiplier, (int, float)) or multiplier < 0:
        raise ValueError(f"config.init.backbone_lr_multiplier must be a number >= 0, got {multiplier!r}")
    if freeze and multiplier != 1.0:
        raise ValueError(
            "config.init.freeze_backbone=True and backbone_lr_multiplier="
            f"{multiplier!r} exclude each other (a frozen backbone has no rate)"
        )
    if not named:
        if freeze or multiplier != 1.0 or head != "auto":
            raise ValueError(
                "config.init.freeze_backbone/backbone_lr_multiplier/head need initial weights: set "
                "config.init.weights (a tag), init.path (a torchvision file) or init.workdir (a run)"
            )
        return
    name = config.model.name
    if named == ["weights"]:
        pretrained.find_row(name, None if init.weights == "latest" else init.weights)
    elif named == ["path"] and not os.path.isfile(init.path):
        raise FileNotFoundError(f"config.init.path={init.path!r}: no such file")
    elif named == ["workdir"] and not checkpoint.has_checkpoint(init.workdir):
        raise FileNotFoundError(f"config.init.workdir={init.workdir!r} holds no checkpoint")


def frozen_batch_norm(*args, use_running_average=None, **kwargs):
    """layers.BatchNorm that normalises with its running statistics in training too, never updating
    them: a frozen backbone's norm (the model's `norm` field), same variables."""
    del use_running_average  # the model's train flag: overruled
    return BatchNorm(*args, use_running_average=True, **kwargs)


def model_overrides(config) -> dict:
    """create_model overrides of config.init: the frozen BatchNorm of a frozen backbone."""
    if not (source_of(config) and _init(config).get("freeze_backbone")):
        return {}
    plain = registry.create_model(config.model.name, cpu_kernels="off")
    return {"norm": frozen_batch_norm} if hasattr(plain, "norm") else {}


def head_paths(model, image_shape) -> frozenset[tuple[str, ...]]:
    """Paths (in the params tree) of the classifier: the parameters whose shape follows num_classes."""

    def shapes(num_classes):
        m = model.clone(num_classes=num_classes)
        x = jax.ShapeDtypeStruct((1, *image_shape), np.float32)
        variables = jax.eval_shape(lambda x: m.init(jax.random.PRNGKey(0), x, train=False), x)
        return traverse_util.flatten_dict(variables["params"])

    a, b = shapes(model.num_classes), shapes(model.num_classes + 1)
    return frozenset(p for p in a if a[p].shape != b[p].shape)


def wrap_optimizer(config, tx, model, image_shape):
    """`tx` for the classifier; for the backbone `tx` scaled by backbone_lr_multiplier, or nothing."""
    init = _init(config)
    if not source_of(config):
        return tx
    multiplier = 0.0 if init.get("freeze_backbone") else float(init.get("backbone_lr_multiplier", 1.0))
    if multiplier == 1.0:
        return tx
    head = head_paths(model, image_shape)

    def labels(params):
        return traverse_util.path_aware_map(lambda path, _: "head" if path in head else "backbone", params)

    return optim.scale_groups(tx, labels, {"head": 1.0, "backbone": multiplier})


def _source_variables(config) -> dict:
    """The initial weights as flat {("params" | "batch_stats", *path): array}."""
    init, name = _init(config), config.model.name
    source = source_of(config)
    if source == "workdir":
        saved = checkpoint.load_latest(init.workdir)
        variables = {"params": saved["params"], "batch_stats": saved.get("batch_stats") or {}}
    else:
        tag = None if source == "path" or init.weights == "latest" else init.weights
        _, variables = pretrained.load_pretrained(
            name, tag, path=init.path if source == "path" else None, cpu_kernels="off"
        )
    return traverse_util.flatten_dict(dict(variables))


def merge(fresh: dict, source: dict, head: frozenset, mode: str) -> tuple[dict, list]:
    """The initial variables: `source`'s, with the classifier fresh where `mode` (config.init.head)
    says so or its shape does not fit. Flat dicts keyed ("params" | "batch_stats", *path).

    Returns:
      (merged, the paths left fresh). ValueError (one line) for a backbone variable the source lacks
      or holds in another shape, or a kept classifier that does not fit.
    """
    merged, fresh_paths = {}, []
    for path, value in fresh.items():
        got = source.get(path)
        fits = got is not None and tuple(np.shape(got)) == tuple(value.shape)
        where = "/".join(path)
        if path[0] == "params" and path[1:] in head and mode != "keep":
            use_fresh = mode == "replace" or not fits
        elif fits:
            use_fresh = False
        elif got is None:
            raise ValueError(f"the initial weights lack {where} {tuple(value.shape)} of this model")
        else:
            what = "the classifier" if path[1:] in head else "the backbone"
            raise ValueError(
                f"the initial weights' {where} has shape {tuple(np.shape(got))}, {what} needs "
                f"{tuple(value.shape)}" + (" (config.init.head='keep')" if path[1:] in head else "")
            )
        merged[path] = value if use_fresh else got
        if use_fresh:
            fresh_paths.append(path)
    return merged, fresh_paths


def initialize(config, model, tx, state, image_shape):
    """`state` (freshly initialised, sharded) with config.init's weights, the optimizer state and
    EMA restarted from them; `state` itself without config.init."""
    if not source_of(config):
        return state
    head = head_paths(model, image_shape)
    fresh = traverse_util.flatten_dict({"params": state.params, "batch_stats": state.batch_stats})
    merged, _ = merge(fresh, _source_variables(config), head, _init(config).get("head", "auto"))
    placed = {p: jax.device_put(np.asarray(v, fresh[p].dtype), fresh[p].sharding) for p, v in merged.items()}
    variables = traverse_util.unflatten_dict(placed)
    params, batch_stats = variables["params"], variables.get("batch_stats", {})
    opt_shardings = jax.tree.map(lambda x: x.sharding, state.opt_state)
    opt_state = jax.jit(tx.init, out_shardings=opt_shardings)(params)
    ema = jax.tree.map(lambda x: x.copy(), params) if config.ema_decay else {}
    return state.replace(params=params, batch_stats=batch_stats, opt_state=opt_state, ema_params=ema)
