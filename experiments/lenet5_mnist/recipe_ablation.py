"""LeNet-5 on MNIST: which parts of the recipe matter (loss, clipping, weight decay, batch size).

Each variant is configs/lenet5_mnist.py with a few keys changed, trained into
runs/lenet5_ablation/<variant>/; the table of final test errors is printed and written to
runs/lenet5_ablation/results.md. 3-6 minutes per variant on 2 CPU cores.

    python experiments/lenet5_mnist/recipe_ablation.py [--only VARIANT ...]
"""

import argparse
import os
import sys
import time

from jaxcnn.config_lib import load_config
from jaxcnn.train import train_and_evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the repository
CE = {"loss.name": "softmax_cross_entropy"}
VARIANTS = {
    "recipe": {},  # MAP criterion (j = 10), clip 1.0, batch 32, lr 0.01, 30 epochs
    "map_20_epochs": {"num_epochs": 20},
    "map_20_epochs_seed1": {"num_epochs": 20, "seed": 1},
    "cross_entropy": {**CE, "num_epochs": 20},
    "cross_entropy_wd5e-4": {**CE, "num_epochs": 20, "optimizer.weight_decay": 5e-4},
    "cross_entropy_batch16": {**CE, "num_epochs": 20, "batch_size": 16},
    "map_j0": {"num_epochs": 20, "loss.map_j": 0.0},
}


def configure(overrides):
    config = load_config(os.path.join(ROOT, "configs", "lenet5_mnist.py"))
    config.update_from_flattened_dict(overrides)  # dotted keys, as on the command line
    config.eval_every_epochs = config.num_epochs  # once, at the end (in steps of this batch size)
    return config


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", choices=sorted(VARIANTS), default=sorted(VARIANTS))
    args = parser.parse_args(argv)
    rows = ["| variant | changes | test error (%) | minutes |", "|---|---|---:|---:|"]
    for name in args.only:
        start = time.time()
        result = train_and_evaluate(configure(VARIANTS[name]), f"runs/lenet5_ablation/{name}")
        changes = ", ".join(f"{k}={v}" for k, v in VARIANTS[name].items()) or "(the config)"
        error = 100 * result["eval/top1_error"]
        rows.append(f"| {name} | {changes} | {error:.2f} | {(time.time() - start) / 60:.1f} |")
        print(rows[-1], flush=True)
    os.makedirs("runs/lenet5_ablation", exist_ok=True)
    with open("runs/lenet5_ablation/results.md", "w") as f:
        f.write("\n".join(rows) + "\n")
    print("\n".join(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
