"""U-Net segmentation (Ronneberger, Fischer, Brox 2015, Sec. 3: SGD with momentum 0.99, one large
tile per batch, the weight map of eq. 2 with w0 = 10 and sigma = 5 pixels, elastic deformations).

Launch:
    python -m jaxcnn.data.prepare mnist_canvas
    python -m jaxcnn.main --config=configs/unet_segmentation.py:mnist_canvas --workdir=runs/unet_canvas
    python -m jaxcnn.main --config=configs/unet_segmentation.py:pets --workdir=runs/unet_pets
    python -m jaxcnn.main --config=configs/unet_segmentation.py:mnist_canvas,paper --workdir=runs/unet_paper
    python -m jaxcnn.main --config=configs/unet_segmentation.py:smoke --workdir=/tmp/smoke

Arguments (comma-separated): a dataset, `mnist_canvas` (default; MNIST digits on 64x64 canvases,
11 classes: background and the ten digits) or `pets` (oxford_iiit_pet trimaps: background, pet,
border); `paper` (the paper's network and optimizer); `smoke` (seconds on a CPU).

Deviations from the paper, and why:
- Width and padding: the default network is the same UNet module with config.model.features =
  (16, 32, 64, 128, 256) (Fig. 1's five levels and four poolings at a quarter of its width) and
  config.model.padding = "SAME", so the 64x64 canvas is one tile and a 30-minute run fits two CPU
  cores. `paper` restores Fig. 1: features (64, ..., 1024), unpadded ("VALID") 3x3 convolutions, a
  572x572 tile whose 388x388 output the label is cropped to, batch 1 and momentum 0.99.
- Batch and rate: the paper's batch of one large tile with momentum 0.99 averages gradients over
  about 100 steps; on 64x64 canvases this recipe uses a batch of 8 tiles with momentum 0.9 and a
  larger rate under a cosine schedule, which learns in fewer steps (the same optimizer family).
- Augmentation: the paper's elastic deformation on its 3x3 grid, with a displacement standard
  deviation scaled to the 64-pixel canvas (2 pixels rather than 10 on 572), small rotations and
  shifts; no flips, which would turn digits into other shapes (a flipped 6 is no digit).
- Class balancing: "sqrt" (inverse square root of the class frequencies) rather than the paper's
  inverse frequencies, which would weigh each digit's stroke pixels about 50 times the background.
- Evaluation: whole test images by overlap-tile (jaxcnn.segmentation), mean IoU over all classes,
  background included; the run ends with the last step's evaluation.
"""

from configs.base import base_config, one_of, parse_arg

DATASETS = ("mnist_canvas", "pets")


def get_config(arg=None):
    tokens, smoke = parse_arg(arg, (*DATASETS, "paper"))
    dataset = one_of(tokens, DATASETS, "mnist_canvas")
    paper = "paper" in tokens

    config = base_config()
    config.task = "segmentation"
    config.model.name = "unet"
    config.model.features = (16, 32, 64, 128, 256)  # channels per level; Fig. 1: (64, 128, 256, 512, 1024)
    config.model.padding = "SAME"  # "VALID": the paper's unpadded convolutions, label cropped to the output
    config.model.dropout_rate = 0.1  # drop-out at the end of the contracting path (Sec. 3; no rate given)

    config.dataset.name = "mnist_canvas" if dataset == "mnist_canvas" else "oxford_iiit_pet"
    config.input.normalize = "standardize"
    config.input.image_size = 64  # the training tile; a canvas is one tile
    # Augmentation (jaxcnn/data/seg_augment.py): the paper's elastic deformation on a 3x3 grid.
    config.input.elastic_sigma = 2.0  # displacement std in pixels (the paper: 10 on 572x572 tiles)
    config.input.elastic_grid = 3
    config.input.rotate_degrees = 10.0
    config.input.shift_pixels = 4.0
    config.input.flip = ""  # digits are not mirror-symmetric
    config.input.interpolation = 1

    # The weight map (eq. 2, jaxcnn/data/weight_map.py): class balancing plus the border term.
    config.loss.w0 = 10.0
    config.loss.sigma = 5.0  # pixels
    config.loss.class_balance = "sqrt"  # "inverse" (the paper), "sqrt" or "none"

    config.batch_size = 8
    config.eval_batch_size = 64  # tiles per forward pass of the overlap-tile evaluation
    config.num_train_steps = 8000
    # RMSProp without momentum and with a tiny epsilon (an Adam-like per-parameter step): the paper's
    # SGD (`paper`) sits for hundreds of steps on a plateau where every digit pixel is at chance.
    config.optimizer.name = "rmsprop"
    config.optimizer.momentum = 0.0
    config.optimizer.rms_decay = 0.9
    config.optimizer.rms_eps = 1e-10
    config.optimizer.base_learning_rate = 1e-3
    config.optimizer.reference_batch_size = 8  # lr = 1e-3 * batch_size / 8
    config.schedule.name = "cosine"
    config.schedule.warmup_epochs = 0.1

    config.log_every_steps = 100
    config.eval_every_steps = 2000
    config.checkpoint_every_steps = 500
    config.checkpoint.best_metric = "eval/pixel_error"  # used when checkpoint.keep_best > 0

    if dataset == "pets":
        # Pets are RGB photographs of varied sizes: random 128x128 tiles, flips are fine.
        config.input.image_size = 128
        config.input.flip = "h"
        config.input.elastic_sigma = 4.0
        config.loss.w0 = 0.0  # the trimaps have no instances: no border term
        config.batch_size = 8
        config.num_train_steps = 20_000
        config.eval_batch_size = 16
    if paper:
        config.model.features = (64, 128, 256, 512, 1024)
        config.model.padding = "VALID"
        config.input.image_size = 572  # Fig. 1's tile: a 388x388 output
        config.input.elastic_sigma = 10.0
        config.loss.class_balance = "inverse"
        config.model.dropout_rate = 0.5
        config.batch_size = config.optimizer.reference_batch_size = 1
        config.eval_batch_size = 1
        config.optimizer.name = "sgd"
        config.optimizer.momentum = 0.99
        config.optimizer.base_learning_rate = 0.01
        config.schedule.name = "constant"
        config.schedule.warmup_epochs = 0.0
    if smoke:
        config.model.features = (4, 8)
        config.input.image_size = 64 if not paper else 28  # 28: a VALID (4, 8) net's 12x12 output
        config.batch_size = 2
        config.eval_batch_size = 16
        config.num_train_steps = 8
        config.log_every_steps = 4
        config.eval_every_steps = 8
        config.checkpoint_every_steps = 4
    return config
