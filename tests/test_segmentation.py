"""jaxcnn.segmentation: the weighted per-pixel loss, the label crop, the metrics, overlap-tile inference
(equal to one forward pass, every pixel once), the task/model checks, and an exact resume."""

import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import ROOT

from jaxcnn import build, config_lib, registry, tasks
from jaxcnn import segmentation as seg


def _logits(rng, shape):
    return jnp.asarray(rng.normal(size=shape), jnp.float32)


def test_loss_is_the_weighted_mean_of_the_pixels_cross_entropy():
    rng = np.random.default_rng(0)
    logits = _logits(rng, (2, 3, 4, 5))
    label = rng.integers(0, 5, (2, 3, 4)).astype(np.int32)
    weight = rng.uniform(0.5, 10.0, (2, 3, 4)).astype(np.float32)
    logp = np.asarray(jax.nn.log_softmax(logits, -1))
    expected = np.mean(-weight * np.take_along_axis(logp, label[..., None], -1)[..., 0])
    assert float(seg.pixel_loss(logits, label, weight)) == pytest.approx(expected, rel=1e-5)
    # Weights matter: zero weight on a pixel removes it, doubling every weight doubles the loss.
    assert float(seg.pixel_loss(logits, label, 2 * weight)) == pytest.approx(2 * expected, rel=1e-5)
    mask = np.zeros_like(weight)
    mask[0, 1, 2] = 1.0
    one = -logp[0, 1, 2, label[0, 1, 2]] / weight.size
    assert float(seg.pixel_loss(logits, label, mask)) == pytest.approx(one, rel=1e-5)


def test_label_and_weight_are_center_cropped_to_a_valid_output():
    rng = np.random.default_rng(1)
    label = rng.integers(0, 3, (1, 10, 12)).astype(np.int32)
    weight = rng.uniform(size=(1, 10, 12)).astype(np.float32)
    logits = _logits(rng, (1, 4, 6, 3))  # a VALID net: the tile's 3-pixel border is context only
    cropped = seg.center_crop(label, 4, 6)
    np.testing.assert_array_equal(cropped, label[:, 3:7, 3:9])
    expected = seg.pixel_loss(logits, label[:, 3:7, 3:9], weight[:, 3:7, 3:9])
    assert float(seg.pixel_loss(logits, label, weight)) == pytest.approx(float(expected), rel=1e-6)
    # The train error is counted on the cropped label too.
    perfect = jax.nn.one_hot(label[:, 3:7, 3:9], 3) * 10.0
    loss, error = seg.objective(perfect, {"label": label, "weight": weight}, None)
    assert float(error) == 0.0 and float(loss) < 1e-3


def test_metrics_of_a_hand_counted_confusion_matrix():
    label = np.array([[0, 0, 1], [1, 2, 2]])
    predicted = np.array([[0, 1, 1], [1, 2, 0]])
    matrix = seg.confusion(label, predicted, 4)
    assert matrix.sum() == 6 and matrix[0, 0] == 1 and matrix[0, 1] == 1 and matrix[2, 0] == 1
    m = seg.summarize(matrix, loss_sum=3.0, num_images=1, class_names=["bg", "a", "b", "unused"])
    # IoU: bg 1 / (1 + 1 + 1) = 1/3, a 2 / 3, b 1 / 2; "unused" occurs nowhere, so it has none.
    assert m["eval/iou/bg"] == pytest.approx(1 / 3)
    assert m["eval/iou/a"] == pytest.approx(2 / 3)
    assert m["eval/iou/b"] == pytest.approx(1 / 2)
    assert "eval/iou/unused" not in m
    assert m["eval/mean_iou"] == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert m["eval/dice"] == pytest.approx((2 / 4 + 4 / 5 + 2 / 3) / 3)
    assert m["eval/pixel_error"] == pytest.approx(2 / 6)
    assert m["eval/loss"] == pytest.approx(0.5)


class _Crop(nn.Module):
    """A stand-in network: its logits are its input, less a `margin`-pixel border (a VALID net's
    geometry with no arithmetic), so stitched outputs can be compared with the image itself."""

    margin: int

    @nn.compact
    def __call__(self, x, train: bool = False):
        m = self.margin
        return x[:, m : x.shape[1] - m, m : x.shape[2] - m] if m else x


@pytest.mark.parametrize("margin", [0, 3])
def test_overlap_tiles_put_every_pixel_back_in_its_place(margin):
    rng = np.random.default_rng(2)
    predictor = seg.TilePredictor(_Crop(margin), {}, tile=10, channels=4, batch_size=3)
    assert predictor.out == 10 - 2 * margin
    images = [rng.normal(size=(h, w, 4)).astype(np.float32) for h, w in [(5, 7), (10, 10), (13, 29), (1, 2)]]
    for image, logp in zip(images, predictor.predict(iter(images)), strict=True):
        np.testing.assert_allclose(logp, jax.nn.log_softmax(image, -1), rtol=1e-5, atol=1e-6)


def _tiny_unet(padding, features=(4, 8), num_classes=3):
    model = registry.create_model("unet", num_classes=num_classes, features=features, padding=padding)
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)))
    return model, variables


def test_overlap_tile_equals_one_forward_pass_where_the_image_fits():
    # features (4, 8), VALID: inputs 12 + 2 b (b >= 3) lose 16 pixels: a 28 tile gives 12 outputs.
    model, variables = _tiny_unet("VALID")
    predictor = seg.TilePredictor(model, variables, tile=28, channels=1, batch_size=4)
    assert predictor.out == 12
    rng = np.random.default_rng(3)
    for height, width in [(36, 36), (30, 20)]:  # 3 x 3 tiles; 3 x 2 tiles with a ragged edge
        image = rng.normal(size=(height, width, 1)).astype(np.float32)
        (logp,) = list(predictor.predict([image]))
        # The whole mirror-padded image (52 x 52, 52 x 40: valid sizes) in one pass, then cropped.
        pad_h, pad_w, rows, cols = seg.tile_layout(height, width, 28, 12)
        padded = np.pad(image, (pad_h, pad_w, (0, 0)), mode="reflect")
        once = jax.jit(model.apply)(variables, padded[None])
        once = jax.nn.log_softmax(once[0], -1)[:height, :width]
        assert logp.shape == (height, width, 3)
        np.testing.assert_allclose(logp, once, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("padding,tile", [("SAME", 8), ("VALID", 28)])
def test_every_pixel_of_every_image_is_counted_once(padding, tile):
    model, variables = _tiny_unet(padding)
    predictor = seg.TilePredictor(model, variables, tile=tile, channels=1, batch_size=5)
    rng = np.random.default_rng(4)
    sizes = [(5, 7), (8, 8), (13, 21), (40, 9), (2, 3)]
    examples = [
        (rng.normal(size=(h, w, 1)).astype(np.float32), rng.integers(0, 3, (h, w)).astype(np.int32))
        for h, w in sizes
    ]
    m = seg.evaluate_split(predictor, iter(examples), 3, ["bg", "x", "y"])
    assert m["eval/num_pixels"] == sum(h * w for h, w in sizes)
    assert m["eval/num_examples"] == len(sizes)
    # The loss is the mean over exactly those pixels of the per-image predictions.
    total = sum(
        -np.take_along_axis(logp, mask[..., None], -1).sum()
        for logp, (_, mask) in zip(predictor.predict([x for x, _ in examples]), examples, strict=True)
    )
    assert m["eval/loss"] == pytest.approx(total / m["eval/num_pixels"], rel=1e-5)


def _recipe(arg="smoke"):
    return config_lib.load_config(f"{ROOT}/configs/unet_segmentation.py:{arg}")


BAD_TASKS = [
    ({"task": "detection"}, "config.task='detection'; allowed: classification, segmentation"),
    (
        {"task": "classification"},
        "config.task='classification' but config.model.name='unet' is a segmentation",
    ),
    (
        {"model.name": "resnet18"},
        "config.task='segmentation' but config.model.name='resnet18' is a classification",
    ),
    ({"eval.protocols": ("center", "ten_crop")}, "segmentation evaluates whole images by overlap-tile only"),
    ({"checkpoint.keep_best": 1, "checkpoint.best_metric": "eval/top1_error"}, "a segmentation run logs"),
]


@pytest.mark.parametrize("override,message", BAD_TASKS, ids=[str(b[0]) for b in BAD_TASKS])
def test_bad_task_and_model_combinations_are_rejected(override, message):
    config = _recipe()
    config.update_from_flattened_dict(override)
    with pytest.raises(ValueError, match=re.escape(message)):
        build.check_config(config)


def test_a_classification_recipe_with_a_unet_is_rejected():
    config = config_lib.load_config(str(ROOT / "configs" / "mnist_convnet.py"))
    config.model.name = "unet"
    with pytest.raises(
        ValueError, match=re.escape("config.task='classification' but config.model.name='unet'")
    ):
        tasks.check_task(config)


@pytest.fixture(scope="module")
def canvas(tmp_path_factory):
    """The root of a tiny mnist_canvas (16 train, 4 test canvases) from real MNIST."""
    from jaxcnn.data import mnist_canvas

    return str(mnist_canvas.prepare(tmp_path_factory.mktemp("canvas"), num_train=16, num_test=4))


def _smoke_run(canvas, workdir, steps):
    from jaxcnn.train import train_and_evaluate

    config = _recipe("smoke")
    config.dataset.folder = canvas
    config.schedule.name = "constant"  # a cosine over 4 steps would not be the first half of one over 8
    config.num_train_steps = steps
    config.resume.allow_changes = "num_train_steps"
    return train_and_evaluate(config, str(workdir))


@pytest.mark.slow
def test_a_resumed_segmentation_run_equals_a_straight_one(canvas, tmp_path):
    import orbax.checkpoint as ocp

    from jaxcnn.metric_writer import read_metrics

    straight = _smoke_run(canvas, tmp_path / "straight", 8)
    _smoke_run(canvas, tmp_path / "resumed", 4)
    resumed = _smoke_run(canvas, tmp_path / "resumed", 8)
    a = ocp.StandardCheckpointer().restore(tmp_path / "straight" / "checkpoints" / "8" / "state")
    b = ocp.StandardCheckpointer().restore(tmp_path / "resumed" / "checkpoints" / "8" / "state")
    jax.tree.map(np.testing.assert_array_equal, a["params"], b["params"])
    assert straight == resumed  # the same final evaluation, to the last bit
    assert straight["eval/num_pixels"] == 4 * 64 * 64
    assert {f"eval/iou/{c}" for c in ["background"]} <= set(straight)
    losses = lambda d: [r["train/loss"] for r in read_metrics(str(d)) if "train/loss" in r and r["step"] > 4]
    assert losses(tmp_path / "straight") == losses(tmp_path / "resumed")


def test_the_train_step_takes_the_segmentation_objective():
    # The fast check beside the run above: train_step's task seam on one synthetic batch.
    from jaxcnn import sharding
    from jaxcnn.train import train_step

    config = _recipe("smoke")
    config.model.dropout_rate = 0.0  # so the step's loss can be recomputed outside it
    mesh = sharding.create_mesh()
    with jax.set_mesh(mesh):
        built = build.build(config, num_classes=3, image_shape=(16, 16, 1), num_train_examples=64, mesh=mesh)
        rng = np.random.default_rng(5)
        batch = {
            "image": rng.normal(size=(2, 16, 16, 1)).astype(np.float32),
            "label": rng.integers(0, 3, (2, 16, 16)).astype(np.int32),
            "weight": rng.uniform(0, 3, (2, 16, 16)).astype(np.float32),
        }
        logits = built.model.apply({"params": built.state.params}, batch["image"], train=True)
        expected = seg.pixel_loss(logits, batch["label"], batch["weight"])
        state, metrics = jax.jit(lambda s, b: train_step(built.model, built.tx, config, s, b))(
            built.state, batch
        )
    assert set(metrics) == {"loss", "pixel_error"}
    assert float(metrics["loss"]) == pytest.approx(float(expected), rel=1e-5)
    assert int(state.step) == 1


def test_prefetch_keeps_the_order_and_raises_the_producers_error():
    assert list(seg.prefetch(iter(range(50)), depth=3)) == list(range(50))

    def failing():
        yield 1
        raise ValueError("bad mask in x.png")

    items = seg.prefetch(failing())
    assert next(items) == 1
    with pytest.raises(ValueError, match="bad mask in x.png"):
        next(items)


@pytest.mark.slow
def test_predict_writes_the_runs_masks_as_palette_pngs(canvas, tmp_path, capsys):
    from PIL import Image

    from jaxcnn import predict
    from jaxcnn.checkpoint import load_latest
    from jaxcnn.data import segmentation as seg_data

    _smoke_run(canvas, tmp_path / "run", 4)
    image_path = f"{canvas}/test/images/00001.png"
    assert predict.main([f"--workdir={tmp_path / 'run'}", f"--out={tmp_path / 'masks'}", image_path]) == 0
    written = Image.open(tmp_path / "masks" / "00001.png")
    assert written.mode == "P" and written.getpalette()[:6] == [0, 0, 0, 31, 119, 180]
    # The same mask as the run's own overlap-tile prediction of that test image.
    config = _recipe("smoke")
    config.dataset.folder = canvas
    split = seg_data.open_split(config, "test")
    model = build.create_model(config, split.num_classes)
    params = load_latest(str(tmp_path / "run"))["params"]
    predictor = seg.TilePredictor(model, {"params": params}, config.input.image_size, split.channels, 4)
    image, _ = list(seg_data.eval_examples(split, config))[1]
    (logp,) = predictor.predict([image])
    np.testing.assert_array_equal(np.asarray(written), logp.argmax(-1))
    # A directory that holds no run is refused in one line.
    assert predict.main([f"--workdir={tmp_path}", f"--out={tmp_path / 'x'}", image_path]) == 2
    assert "error:" in capsys.readouterr().err
