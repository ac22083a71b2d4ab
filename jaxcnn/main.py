"""Command line: python -m jaxcnn.main --config=configs/X.py --workdir=DIR [--config.KEY=VALUE ...]."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics.jsonl and TensorBoard.")
config_flags.DEFINE_config_file("config", None, "Experiment config file (configs/*.py).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")  # tf.data only; the accelerators belong to JAX
    from jaxcnn.train import train_and_evaluate

    try:
        result = train_and_evaluate(FLAGS.config, FLAGS.workdir)
    except (ValueError, FileNotFoundError, FloatingPointError) as e:
        sys.exit(f"error: {e}")
    print(
        f"{FLAGS.config.model.name} on {FLAGS.config.dataset.name}: "
        f"test error {100 * result['eval/top1_error']:.2f}% "
        f"(top-5 {100 * result['eval/top5_error']:.2f}%) on "
        f"{int(result['eval/num_examples'])} examples; run in {FLAGS.workdir}"
    )


def run():
    app.run(main)


if __name__ == "__main__":
    run()
