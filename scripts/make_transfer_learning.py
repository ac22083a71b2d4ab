"""Writes colab/transfer_learning.ipynb (run after editing the cells below; the notebook is committed)."""

from nbformat.v4 import new_code_cell, new_markdown_cell
from notebook_cells import SETUP, write

cells = [
    new_markdown_cell("""# Transfer learning: retrain Inception V3's last layer, fine-tune ResNet-50

Two things people do first with a network pretrained on ImageNet, on a folder of your own images
(`ROOT/train/LABEL/*.jpg`, `ROOT/test/LABEL/*.jpg`):

1. **Retrain the final layer of Inception V3** (a linear probe): the backbone, its BatchNorm statistics
   included, stays exactly as pretrained; only a new classifier for your classes is trained.
2. **Fine-tune ResNet-50**: every layer trains, the backbone at a tenth of the classifier's rate.

Both use torchvision's published weights, converted to jaxcnn (`jaxcnn.load_pretrained`, equal logits),
through the recipe `configs/finetune_image_folder.py` and its `config.init` keys. The notebook makes a
small folder of generated images so it runs anywhere; point `FOLDER` at your own.

**Offline** (no download possible, or `TL_OFFLINE=1`): the weights come from `path=`, a file written
here with `torch.save` of a *randomly initialised* torchvision model. The code path is the same, but
the predictions then mean nothing: with real weights, download them elsewhere and pass their file."""),
    new_code_cell(SETUP),
    new_code_cell("""# Sizes: a quick demonstration by default; tests shrink them through the environment.
STEPS = int(os.environ.get('TL_STEPS', 100))
IMAGES = int(os.environ.get('TL_IMAGES', 20))  # generated training images per class
PROBE_MODEL = os.environ.get('TL_PROBE_MODEL', 'inception_v3')
FINETUNE_MODEL = os.environ.get('TL_FINETUNE_MODEL', 'resnet50')
SIZES = {'inception_v3': int(os.environ.get('TL_INCEPTION_SIZE', 299))}
SIZE = int(os.environ.get('TL_SIZE', 224))
WORKDIR = os.environ.get('TL_WORKDIR', '/tmp/jaxcnn_transfer')
OFFLINE = os.environ.get('TL_OFFLINE', '') == '1'

# torchvision before TensorFlow (which jaxcnn's input pipeline imports): the reverse order crashes.
import torch, torchvision
import jax, jaxcnn
print(jax.devices())"""),
    new_markdown_cell("## Weights: downloaded, or `path=` a torchvision file"),
    new_code_cell("""def init_keys(name):
    \"\"\"config.init keys for `name`: its published weights, or offline a torch.save'd file.\"\"\"
    if not OFFLINE:
        try:
            jaxcnn.load_pretrained(name)  # downloads into ~/.cache/jaxcnn/weights (SHA-256 checked)
            return {'init.weights': 'latest'}
        except FileNotFoundError as e:
            print(f'offline: {e}')
    os.makedirs(WORKDIR, exist_ok=True)
    path = os.path.join(WORKDIR, f'{name}_random.pth')
    torch.manual_seed(0)
    torch.save(torchvision.models.get_model(name, weights=None).state_dict(), path)
    print(f'{name}: RANDOM torchvision weights from {path} (offline: predictions are meaningless)')
    return {'init.weights': '', 'init.path': path}

for name in (PROBE_MODEL, FINETUNE_MODEL):
    print(name, jaxcnn.list_pretrained(name)[-1]['tag'], init_keys(name))"""),
    new_markdown_cell("## A small image folder (replace `FOLDER` with yours)"),
    new_code_cell("""from jaxcnn.data import fake

FOLDER = os.environ.get('TL_FOLDER') or os.path.join(WORKDIR, 'folder')
if not os.path.isdir(os.path.join(FOLDER, 'train')):
    fake.write_image_folder(FOLDER, splits=(('train', IMAGES), ('test', max(2, IMAGES // 4))),
                            labels=('cat', 'dog'), size=(120, 160))
print(sorted(os.listdir(os.path.join(FOLDER, 'train'))))"""),
    new_markdown_cell("""## 1. Retrain the last layer of Inception V3

`:inception_v3,probe` sets `config.init.freeze_backbone = True`: the backbone gets no update and its
BatchNorm layers normalise with their running statistics in training too; the new 2-class `fc` (and
the auxiliary head's) is the only thing that learns."""),
    new_code_cell("""from jaxcnn.config_lib import load_config
from jaxcnn.train import train_and_evaluate


def recipe(model, *tokens, **keys):
    config = load_config(f"configs/finetune_image_folder.py:{','.join((model, *tokens))}")
    config.dataset.folder = FOLDER
    config.input.image_size = SIZES.get(model, SIZE)
    config.batch_size = config.eval_batch_size = min(8, 2 * IMAGES)
    config.num_train_steps = STEPS
    config.log_every_steps = max(1, STEPS // 10)
    config.eval_every_epochs = config.checkpoint_every_epochs = 0
    config.eval_every_steps = config.checkpoint_every_steps = STEPS
    config.update_from_flattened_dict({**init_keys(model), **keys})
    return config


probe_dir = os.path.join(WORKDIR, 'probe')
probe = train_and_evaluate(recipe(PROBE_MODEL, 'probe'), probe_dir)
print(f"{PROBE_MODEL} linear probe: test error {100 * probe['eval/top1_error']:.1f}%")"""),
    new_markdown_cell("""## 2. Fine-tune ResNet-50

Every layer trains; `init.backbone_lr_multiplier = 0.1` gives the pretrained layers a tenth of the
new classifier's rate."""),
    new_code_cell("""ft_dir = os.path.join(WORKDIR, 'finetune')
ft_config = recipe(FINETUNE_MODEL, **{'init.backbone_lr_multiplier': 0.1})
ft = train_and_evaluate(ft_config, ft_dir)
print(f"{FINETUNE_MODEL} fine-tuned: test error {100 * ft['eval/top1_error']:.1f}%")"""),
    new_markdown_cell("## Predictions of the fine-tuned network on test images"),
    new_code_cell("""import matplotlib.pyplot as plt
import numpy as np
from jaxcnn import build
from jaxcnn.checkpoint import load_latest
from jaxcnn.data import input as input_lib

split = input_lib.split_from_config(ft_config, 'test')
names = split.builder.info.features['label'].names
state = load_latest(ft_dir)
model = build.create_model(ft_config, split.num_classes)
variables = build.variables_of(state['params'], state['batch_stats'])
batch = next(input_lib.eval_batches(split, ft_config))
n = int(batch['mask'].sum())
probs = np.asarray(jax.nn.softmax(model.apply(variables, batch['image'][:n], train=False)))
mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
fig, axes = plt.subplots(1, n, figsize=(2 * n, 2.4), squeeze=False)
for ax, image, p, label in zip(axes[0], batch['image'][:n], probs, batch['label'][:n]):
    k = int(np.argmax(p))
    ax.imshow(np.clip(image * std + mean, 0, 1))
    ax.set_title(f'{names[k]} {p[k]:.2f}', color='black' if k == label else 'red')
    ax.axis('off')
    print(f'predicted {names[k]} ({p[k]:.2f}), true {names[label]}')"""),
    new_markdown_cell("""## Feature extraction

`jaxcnn.features` gives the pooled penultimate features (what the classifier sees) and, with
`stages=True`, every named layer's feature map; `jaxcnn.extract.stage_ends` keeps one per resolution.
`python -m jaxcnn.extract --workdir=RUN --split=test --out=f.npz` writes a split's features and labels."""),
    new_code_cell("""from jaxcnn.extract import stage_ends

pooled, maps = jaxcnn.features(model, variables, batch['image'][:n], stages=True)
print('pooled', pooled.shape)
for name, x in stage_ends(maps).items():
    print(f'{name:10s} {tuple(x.shape)}')"""),
]
write(cells, "transfer_learning.ipynb")
