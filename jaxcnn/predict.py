"""Top-5 ImageNet classes of images with pretrained weights, or a segmentation run's masks.

    python -m jaxcnn.predict --model=resnet50 [--weights=TAG | --path=FILE] IMAGE...
    python -m jaxcnn.predict --workdir=RUN --out=DIR [--checkpoint=best] IMAGE...

With --workdir (a segmentation run, config.task = "segmentation"), each image is segmented whole
by overlap-tile (jaxcnn.segmentation) with the run's latest (or best) weights, and its predicted
class ids are written as DIR/NAME.png, a palette PNG (pixel value = class id, class 0 black).

Preprocessing is the weights' own (jaxcnn.list_pretrained: resize the shorter side, center crop,
mean/std). Class names come from torchvision's bundled ImageNet categories when torchvision is
installed (no download), else class indices are printed. An unreadable or non-image file gets a
one-line error naming it; the other images are still predicted (exit status 1 if any failed).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np


def imagenet_labels() -> list[str] | None:
    try:
        from torchvision.models._meta import _IMAGENET_CATEGORIES
    except ImportError:
        return None
    return list(_IMAGENET_CATEGORIES)


def preprocess(path: str, row: dict) -> np.ndarray:
    """An (H, W, 3) float32 image as the weights expect: resize shorter side, center crop, normalise."""
    from PIL import Image

    with Image.open(path) as image:
        image = image.convert("RGB")
        w, h = image.size
        scale = row["resize"] / min(w, h)
        image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.BILINEAR)
        w, h = image.size
        crop = row["crop"]
        left, top = (w - crop) // 2, (h - crop) // 2
        image = image.crop((left, top, left + crop, top + crop))
        pixels = np.asarray(image, np.float32) / 255.0
    return (pixels - np.asarray(row["mean"], np.float32)) / np.asarray(row["std"], np.float32)


def palette(num_classes: int) -> list[int]:
    """A flat RGB palette for PIL: class 0 black, then well-separated hues (tab10's, then repeated)."""
    hues = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
            (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]  # fmt: skip
    colours = [(0, 0, 0)] + [hues[i % len(hues)] for i in range(max(num_classes, 1) - 1)]
    return [v for rgb in colours for v in rgb]


def predict_masks(workdir: str, out: str, paths: list[str], which: str = "latest") -> int:
    """Writes OUT/NAME.png, the predicted class ids of each image, for a segmentation run."""
    import os

    from PIL import Image

    from jaxcnn import build, checkpoint, run_dir, segmentation, sharding
    from jaxcnn.data import segmentation as seg_data

    config = run_dir.manifest_config(workdir)
    if config is None:
        raise FileNotFoundError(f"{workdir} holds no run (no {run_dir.MANIFEST_FILE})")
    if segmentation.task_of(config) != "segmentation":
        raise ValueError(
            f"--workdir={workdir} is a {segmentation.task_of(config)} run; --workdir needs a segmentation run"
        )
    split = build.open_split(config, config.dataset.eval_split)  # classes, channels, normalisation
    mesh = sharding.create_mesh(config.mesh.model)
    model = build.create_model(config, split.num_classes)
    shape = (config.input.image_size,) * 2 + (split.channels,)
    target = build.abstract_weights(model, config, mesh, shape)
    step, weights = checkpoint.restore_weights(
        workdir, target, best=which == "best", best_metric=config.checkpoint.best_metric
    )
    variables = build.variables_of(weights["params"], weights["batch_stats"])
    predictor = segmentation.TilePredictor(model, variables, config.input.image_size, split.channels, 1, mesh)
    normalize = seg_data.normalizer(split, config)
    os.makedirs(out, exist_ok=True)
    failed = 0
    for path in paths:
        try:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("L" if split.channels == 1 else "RGB"))
        except (OSError, ValueError) as e:
            print(f"{path}: cannot read as an image ({type(e).__name__})", file=sys.stderr)
            failed += 1
            continue
        pixels = pixels[..., None] if pixels.ndim == 2 else pixels
        (logp,) = predictor.predict([normalize(pixels)])
        mask = Image.fromarray(logp.argmax(-1).astype(np.uint8), mode="P")
        mask.putpalette(palette(split.num_classes))
        target_path = os.path.join(out, os.path.splitext(os.path.basename(path))[0] + ".png")
        mask.save(target_path)
        print(f"{path} -> {target_path} (step {step})")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxcnn.predict", description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="a registered model with pretrained weights (classification)")
    parser.add_argument("--workdir", help="a segmentation run: write its predicted masks to --out")
    parser.add_argument("--out", help="with --workdir: the folder of the mask PNGs")
    parser.add_argument("--checkpoint", default="latest", choices=("latest", "best"), help="with --workdir")
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--weights", default=None, help="a tag of jaxcnn.list_pretrained(MODEL); default latest"
    )
    group.add_argument("--path", default=None, help="a torchvision state-dict file for MODEL")
    parser.add_argument("images", nargs="+")
    args = parser.parse_args(argv)
    if args.workdir:
        if not args.out:
            parser.error("--workdir needs --out=DIR (where the mask PNGs go)")
        try:
            return predict_masks(args.workdir, args.out, args.images, args.checkpoint)
        except (ValueError, FileNotFoundError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    if not args.model:
        parser.error("give --model (pretrained classification) or --workdir (a segmentation run)")

    import jax

    import jaxcnn

    rows = jaxcnn.list_pretrained(args.model)
    if not rows:
        parser.error(f"no pretrained weights for --model={args.model}")
    row = next((r for r in rows if r["tag"] == args.weights), rows[-1]) if args.weights else rows[-1]
    if args.weights and row["tag"] != args.weights:
        parser.error(
            f"--weights={args.weights} unknown for {args.model}; allowed: {[r['tag'] for r in rows]}"
        )
    model, variables = jaxcnn.load_pretrained(args.model, row["tag"], path=args.path)
    labels = imagenet_labels()
    apply = jax.jit(lambda v, x: jax.nn.softmax(model.apply(v, x, train=False)))
    failed = 0
    for path in args.images:
        try:
            x = preprocess(path, row)
        except (OSError, ValueError) as e:
            print(f"{path}: cannot read as an image ({type(e).__name__})", file=sys.stderr)
            failed += 1
            continue
        probs = np.asarray(apply(variables, x[None]))[0]
        print(path)
        for i in np.argsort(probs)[::-1][:5]:
            name = labels[i] if labels else f"class {i}"
            print(f"  {probs[i]:.4f}  {name}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
