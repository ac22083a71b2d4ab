"""The segmentation task: per-pixel loss, train metrics, overlap-tile evaluation (U-Net, Ronneberger 2015).

The trainer stays task-neutral: `config.task` picks, in one place each (build.check_config,
build.open_split, train.train_step's objective, evaluate.evaluate_state), this module's functions
instead of the classification ones.

Loss (Sec. 3): the softmax cross-entropy of every output pixel, weighted by the weight map the data
pipeline computes (class balancing plus the border term w0 exp(-(d1 + d2)^2 / 2 sigma^2)). A
"VALID" U-Net's output is smaller than its input tile; the label and the weights are center-cropped
to the output (the tile's border is context only, Fig. 2).

Evaluation (Fig. 2, the overlap-tile strategy): each whole image is mirror-padded by the network's
context (input - output) / 2 plus what rounds it up to whole output tiles; tiles of the network's
input size are cut so that their outputs tile the image exactly; their logits are stitched and
cropped back to the image. Every pixel of every image is counted once, in one confusion matrix over
the whole split: pixel error, IoU per class and their mean (background included), Dice, loss.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import jax
import jax.numpy as jnp
import numpy as np

# config.task and its checks live in jaxcnn/tasks.py (build imports them; this module is the task itself).
from jaxcnn.tasks import EvaluationAbandoned, task_of  # noqa: E402, F401  (task_of: callers' seam)

# --- training -------------------------------------------------------------------------------------


def center_crop(x, height: int, width: int):
    """The central (height, width) of x's axes 1 and 2 ((B, H, W) labels, (B, H, W, C) images)."""
    top, left = (x.shape[1] - height) // 2, (x.shape[2] - width) // 2
    return x[:, top : top + height, left : left + width]


def pixel_loss(logits, label, weight):
    """Sum over pixels of weight * softmax cross-entropy, divided by the number of pixels (Sec. 3's
    energy as a mean); label and weight are center-cropped to the logits' (B, h, w)."""
    height, width = logits.shape[1:3]
    label, weight = center_crop(label, height, width), center_crop(weight, height, width)
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    nll = -jnp.take_along_axis(logp, label[..., None], axis=-1)[..., 0]
    return jnp.mean(weight * nll)


def objective(outputs, batch, loss_config) -> tuple[jax.Array, jax.Array]:
    """(loss, pixel error) of one training batch: train.train_step's segmentation objective."""
    del loss_config  # the weight map carries w0, sigma and the class balancing
    logits = outputs[0] if isinstance(outputs, tuple) else outputs
    loss = pixel_loss(logits, batch["label"], batch["weight"])
    label = center_crop(batch["label"], *logits.shape[1:3])
    error = jnp.mean((jnp.argmax(logits, axis=-1) != label).astype(jnp.float32))
    return loss, error


def prefetch(iterator, depth: int = 2):
    """Yields `iterator`'s items in order, each computed ahead on a background thread (at most `depth`
    waiting): the NumPy augmentation of the next batches overlaps the current step. An exception in
    the producer is raised here, at the item where it happened."""
    import queue
    import threading

    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce():
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        items.put((item, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        except BaseException as e:  # handed to the consumer, raised there
            items.put((done, e))
            return
        items.put((done, None))

    thread = threading.Thread(target=produce, daemon=True, name="segmentation-prefetch")
    thread.start()
    try:
        while True:
            item, error = items.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()


# --- overlap-tile inference -----------------------------------------------------------------------


def output_size(model, variables, tile: int, channels: int) -> int:
    """The side of the model's output for a tile x tile input (traced, nothing computed)."""
    shape = jax.eval_shape(
        lambda v, x: model.apply(v, x, train=False),
        variables,
        jax.ShapeDtypeStruct((1, tile, tile, channels), jnp.float32),
    ).shape
    return shape[1]


def tile_layout(
    height: int, width: int, tile: int, out: int
) -> tuple[tuple[int, int], tuple[int, int], int, int]:
    """How an image is padded and cut: ((top, bottom), (left, right)) mirror pads, tiles down, across.

    Output tile (i, j) covers image rows [i out, (i + 1) out) and columns [j out, (j + 1) out); its
    input is the padded image's rows [i out, i out + tile): the context (tile - out) / 2 on each side.
    """
    margin = (tile - out) // 2
    rows, cols = math.ceil(height / out), math.ceil(width / out)
    return (margin, margin + rows * out - height), (margin, margin + cols * out - width), rows, cols


def cut_tiles(image: np.ndarray, tile: int, out: int) -> tuple[np.ndarray, tuple[int, int]]:
    """(tiles (rows * cols, tile, tile, C) in row-major order, (rows, cols)) of an HxWxC image."""
    height, width = image.shape[:2]
    pad_h, pad_w, rows, cols = tile_layout(height, width, tile, out)
    padded = _mirror_pad(image, pad_h, pad_w)
    tiles = [
        padded[i * out : i * out + tile, j * out : j * out + tile] for i in range(rows) for j in range(cols)
    ]
    return np.stack(tiles), (rows, cols)


def _mirror_pad(image, pad_h, pad_w):
    # Reflection without repeating the edge (Fig. 2); numpy reflects again when a pad is larger than
    # the image, so a small image still fills a large tile.
    return np.pad(image, (pad_h, pad_w) + ((0, 0),) * (image.ndim - 2), mode="reflect")


def stitch(outputs: np.ndarray, grid: tuple[int, int], height: int, width: int) -> np.ndarray:
    """(rows * cols, out, out, K) tile outputs -> the (height, width, K) map of the whole image."""
    rows, cols = grid
    out = outputs.shape[1]
    full = (
        outputs.reshape(rows, cols, out, out, -1).transpose(0, 2, 1, 3, 4).reshape(rows * out, cols * out, -1)
    )
    return full[:height, :width]


class TilePredictor:
    """Log-probabilities of whole images by overlap-tile, the tiles of many images batched together.

    Args:
      model, variables: the network and its weights.
      tile: the network's input side (config.input.image_size).
      channels: the images' channels.
      batch_size: tiles per forward pass (the last pass is padded).
      mesh: when given, each pass's tiles are split over its data axis (batch_size rounded up).
    """

    def __init__(self, model, variables, tile: int, channels: int, batch_size: int, mesh=None):
        from jaxcnn import sharding

        self.tile, self.variables, self.mesh = tile, variables, mesh
        self.out = output_size(model, variables, tile, channels)
        devices = mesh.shape["data"] if mesh is not None else 1
        self.batch_size = -(-batch_size // devices) * devices
        fn = jax.jit(lambda v, x: jax.nn.log_softmax(model.apply(v, x, train=False).astype(jnp.float32), -1))
        self._apply = sharding.one_step_at_a_time_on_cpu(fn, mesh) if mesh is not None else fn

    def _forward(self, tiles: np.ndarray) -> np.ndarray:
        from jaxcnn import sharding

        results = []
        for start in range(0, len(tiles), self.batch_size):
            chunk = tiles[start : start + self.batch_size]
            real = len(chunk)
            if real < self.batch_size:  # pad the last pass: one compiled shape
                chunk = np.concatenate(
                    [chunk, np.zeros((self.batch_size - real, *chunk.shape[1:]), chunk.dtype)]
                )
            x = sharding.shard_batch({"x": chunk}, self.mesh)["x"] if self.mesh is not None else chunk
            results.append(np.asarray(jax.device_get(self._apply(self.variables, x)))[:real])
        return np.concatenate(results)

    def predict(self, images: Iterable[np.ndarray]) -> Iterable[np.ndarray]:
        """Yields each image's (H, W, K) log-probabilities, in order."""
        pending, queued = [], 0
        for image in images:
            tiles, grid = cut_tiles(np.asarray(image, np.float32), self.tile, self.out)
            pending.append((tiles, grid, image.shape[:2]))
            queued += len(tiles)
            if queued >= self.batch_size:
                yield from self._flush(pending)
                pending, queued = [], 0
        if pending:
            yield from self._flush(pending)

    def _flush(self, pending):
        outputs = self._forward(np.concatenate([tiles for tiles, _, _ in pending]))
        start = 0
        for tiles, grid, (height, width) in pending:
            yield stitch(outputs[start : start + len(tiles)], grid, height, width)
            start += len(tiles)


# --- metrics over a split -------------------------------------------------------------------------


def confusion(label: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) counts: row the true class, column the predicted one; every pixel once."""
    index = label.astype(np.int64).ravel() * num_classes + predicted.astype(np.int64).ravel()
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def summarize(
    matrix: np.ndarray, loss_sum: float, num_images: int, class_names, prefix: str = "eval"
) -> dict:
    """The logged metrics of a split's confusion matrix and summed per-pixel loss.

    IoU of class k = TP / (TP + FP + FN); the mean is over the classes that occur in the labels or
    the predictions (a class absent from both has no IoU). Dice = 2 TP / (2 TP + FP + FN), averaged
    the same way.
    """
    matrix = matrix.astype(np.float64)
    pixels = matrix.sum()
    tp = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - tp
    present = union > 0
    iou = np.where(present, tp / np.maximum(union, 1), np.nan)
    dice = np.where(present, 2 * tp / np.maximum(union + tp, 1), np.nan)
    metrics = {
        f"{prefix}/loss": loss_sum / pixels,
        f"{prefix}/pixel_error": 1.0 - tp.sum() / pixels,
        f"{prefix}/mean_iou": float(np.nanmean(iou)),
        f"{prefix}/dice": float(np.nanmean(dice)),
        f"{prefix}/num_examples": float(num_images),
        f"{prefix}/num_pixels": float(pixels),
    }
    for name, value in zip(class_names, iou, strict=True):
        if not np.isnan(value):
            metrics[f"{prefix}/iou/{name}"] = float(value)
    return metrics


def evaluate_split(
    predictor: TilePredictor, examples, num_classes: int, class_names, prefix="eval", stop=None
):
    """Every (image, mask) of `examples` through `predictor`: the metrics of `summarize`."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    loss_sum, count = 0.0, 0
    examples = iter(examples)
    masks = []

    def images():
        for image, mask in examples:
            if stop is not None and stop():
                raise EvaluationAbandoned("segmentation evaluation abandoned")
            masks.append(np.asarray(mask))
            yield image

    for logp in predictor.predict(images()):
        mask = masks.pop(0)
        matrix += confusion(mask, logp.argmax(-1), num_classes)
        loss_sum -= float(np.take_along_axis(logp, mask[..., None].astype(np.int64), -1).sum())
        count += 1
    return summarize(matrix, loss_sum, count, class_names, prefix)


def evaluate_state(model, state, split, config, mesh, stop=None) -> dict[str, float]:
    """The whole eval split by overlap-tile on the state's weights (and on their EMA when kept)."""
    from jaxcnn import build
    from jaxcnn.data import segmentation as seg_data

    metrics = {}
    weights = [("eval", state.params)] + ([("eval_ema", state.ema_params)] if config.ema_decay else [])
    for prefix, params in weights:
        variables = build.variables_of(params, state.batch_stats)
        predictor = TilePredictor(
            model, variables, config.input.image_size, split.channels, config.eval_batch_size, mesh
        )
        examples = seg_data.eval_examples(split, config)
        metrics |= evaluate_split(predictor, examples, split.num_classes, split.class_names, prefix, stop)
    return metrics


def describe(metrics: dict[str, float], prefix: str = "eval") -> str:
    """One line for people: "mean IoU 83.10%, pixel error 2.31%, Dice 90.2% (1000 images)"."""
    return (
        f"mean IoU {100 * metrics[f'{prefix}/mean_iou']:.2f}%, "
        f"pixel error {100 * metrics[f'{prefix}/pixel_error']:.2f}%, "
        f"Dice {100 * metrics[f'{prefix}/dice']:.2f}% ({int(metrics[f'{prefix}/num_examples'])} images)"
    )
