"""Feature extraction: named intermediate feature maps and pooled penultimate features of any model,
and a command that writes a dataset's features and labels to an .npz (for scikit-learn or others).

    pooled = jaxcnn.features(model, variables, images)                 # (N, D), what the classifier sees
    pooled, maps = jaxcnn.features(model, variables, images, stages=True)
    maps["layer3_1"]                                                     # (N, H, W, C), by layer name
    jaxcnn.extract.stage_ends(maps)                                      # the last map of each resolution

    python -m jaxcnn.extract --model=resnet50 --weights=IMAGENET1K_V2 --folder=ROOT --split=test --out=f.npz

The maps come from flax's `capture_intermediates`, filtered to the model's named top-level layers
(conv1, layer1_0, ..., Mixed_7c, denseblock4_layer16, features_18): no model has code for this. Each
map is what that layer returns (a DenseNet layer returns its k new maps, a ResNet's bn1 its output
before the ReLU); `stage_ends` keeps the last map at each spatial size, timm's `forward_intermediates`
pyramid for nets built of stages. `pooled` is the model's `features_only` output: the global (or, for
AlexNet/VGG, fc7's) features that the classifier takes.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys

import numpy as np


def _top_level(order: list):
    """capture_intermediates' filter: a named child of the model's root; records the call order."""

    def keep(module, method_name: str) -> bool:
        if method_name != "__call__" or len(module.path) != 1:
            return False
        if module.path[0] not in order:
            order.append(module.path[0])  # runs while tracing: the layers in the order they run
        return True

    return keep


@functools.lru_cache(maxsize=16)
def _jitted(model, stages: bool):
    import jax

    order: list[str] = []

    def run(variables, images):
        if not stages:
            return model.apply(variables, images, train=False, features_only=True), {}
        pooled, state = model.apply(
            variables,
            images,
            train=False,
            features_only=True,
            capture_intermediates=_top_level(order),
            mutable=["intermediates"],
        )
        maps = {name: out["__call__"][0] for name, out in state["intermediates"].items()}
        return pooled, {name: x for name, x in maps.items() if getattr(x, "ndim", 0) == 4}

    return jax.jit(run), order


def features(model, variables, images, *, stages: bool = False):
    """Pooled penultimate features of `images`, and with `stages` every named layer's feature map.

    Args:
      model: a jaxcnn model (create_model / load_pretrained).
      variables: its variables ({"params", "batch_stats"}).
      images: (N, H, W, C) float32, preprocessed as the weights expect.
      stages: also return the 4-D outputs of the model's named top-level layers.

    Returns:
      pooled (N, D) in eval mode; with `stages`, (pooled, {layer name: (N, H, W, C)}) in the order the
      layers run.
    """
    run, order = _jitted(model, bool(stages))
    pooled, maps = run(variables, images)
    if not stages:
        return pooled
    return pooled, {name: maps[name] for name in order if name in maps}


def stage_ends(maps: dict) -> dict:
    """The last map of each spatial size, in order: one map per stage (stride) of the network."""
    ends: dict = {}
    for name, x in maps.items():
        same = [k for k, v in ends.items() if v.shape[1:3] == x.shape[1:3]]
        for k in same:
            del ends[k]
        ends[name] = x
    return ends


# ---- the command ----


def _config(args):
    """The data config: --config (a recipe), else the run's (--workdir), plus --folder/--split."""
    from configs.base import base_config
    from jaxcnn import config_lib, run_dir

    if args.config:
        config = config_lib.load_config(args.config)
    elif args.workdir:
        config = run_dir.manifest_config(args.workdir)
        if config is None:
            raise FileNotFoundError(f"no run in {args.workdir} (its config.json is missing)")
    else:
        config = base_config()
    if args.folder:
        config.dataset.name, config.dataset.folder = "image_folder", args.folder
    if not config.dataset.name:
        raise ValueError("name the data: --folder=ROOT (ROOT/split/label/*.jpg) or --config=configs/X.py")
    if args.model:
        config.model.name = args.model
    config.eval_batch_size = args.batch_size
    return config


def _model_and_variables(args, config):
    """(model, variables, adapt): adapt maps the pipeline's images to what the weights expect."""
    from jaxcnn import build, checkpoint, pretrained
    from jaxcnn.data import input as input_lib

    overrides = {k: v for k, v in config.model.items() if k != "name"}
    if args.workdir:
        saved = checkpoint.load_latest(args.workdir)
        model = build.create_model(config, 1)  # the classifier is never run: features_only
        variables = build.variables_of(saved["params"], saved.get("batch_stats") or {})
        return model, variables, None
    if not (args.weights or args.path):
        raise ValueError("give the weights: --weights=TAG, --path=FILE (state dict) or --workdir=RUN")
    row = pretrained.find_row(config.model.name, args.weights)
    config.input.normalize = "standardize"  # then input_adapter: the weights' own mean/std
    model, variables = pretrained.load_pretrained(config.model.name, row["tag"], path=args.path, **overrides)
    config.input.image_size = args.image_size or row["crop"]
    config.eval.crop_ratio = row["crop"] / row["resize"]
    mean_std = input_lib.MEAN_STD[config.dataset.name.split("/")[0]]
    adapt = pretrained.input_adapter(row, *mean_std)
    return model, variables, adapt


def extract(args) -> dict[str, np.ndarray]:
    """The arrays the command writes: features (N, D) float32, labels (N,) int32, class_names."""
    import jax

    from jaxcnn.data import input as input_lib

    config = _config(args)
    model, variables, adapt = _model_and_variables(args, config)
    if args.image_size:
        config.input.image_size = args.image_size
    if not config.input.image_size:
        config.input.image_size = _native_size(config.model.name)
    split = input_lib.split_from_config(config, args.split)
    run = jax.jit(lambda v, x: model.apply(v, adapt(x) if adapt else x, train=False, features_only=True))
    feats, labels = [], []
    for batch in input_lib.eval_batches(split, config):
        keep = batch["mask"] > 0
        feats.append(np.asarray(run(variables, batch["image"]))[keep])
        labels.append(batch["label"][keep])
    names = getattr(getattr(split.builder, "info", None), "features", {})
    label_names = names["label"].names if "label" in names else [str(i) for i in range(split.num_classes)]
    return {
        "features": np.concatenate(feats).astype(np.float32),
        "labels": np.concatenate(labels).astype(np.int32),
        "class_names": np.asarray(label_names),
    }


def _native_size(name: str) -> int:
    from jaxcnn import registry

    return registry.model_info(name).input_size[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxcnn.extract", description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a jaxcnn model (default: the run's, with --workdir)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--weights", help="a tag of jaxcnn.list_pretrained(MODEL); 'latest' for the newest")
    source.add_argument("--path", help="a torchvision state-dict file for MODEL")
    source.add_argument("--workdir", help="a jaxcnn run: its latest checkpoint (and, by default, its data)")
    data = parser.add_mutually_exclusive_group()
    data.add_argument("--folder", help="an image folder ROOT/split/label/*.jpg")
    data.add_argument("--config", help="a recipe configs/X.py[:ARG]: its dataset and input keys")
    parser.add_argument("--split", default="test", help="the split to read (default test)")
    parser.add_argument("--image_size", type=int, default=0, help="default: the weights' crop or the run's")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--out", required=True, help="the .npz to write")
    args = parser.parse_args(argv)
    if args.weights == "latest":
        args.weights = None
    if not args.model and not args.workdir:
        parser.error("--model is required (or --workdir, whose run names it)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        arrays = extract(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n, d = arrays["features"].shape
    print(f"{n} examples x {d} features of split {args.split!r} -> {args.out}")
    np.savez(args.out, **arrays)
    return 0


if __name__ == "__main__":
    sys.exit(main())
