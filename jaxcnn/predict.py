"""Top-5 ImageNet classes of images with pretrained weights.

    python -m jaxcnn.predict --model=resnet50 [--weights=TAG | --path=FILE] IMAGE...

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m jaxcnn.predict", description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--weights", default=None, help="a tag of jaxcnn.list_pretrained(MODEL); default latest"
    )
    group.add_argument("--path", default=None, help="a torchvision state-dict file for MODEL")
    parser.add_argument("images", nargs="+")
    args = parser.parse_args(argv)

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
