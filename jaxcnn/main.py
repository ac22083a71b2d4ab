"""Command line: python -m jaxcnn.main --config=configs/X.py --workdir=DIR [--config.KEY=VALUE ...]."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out

from jaxcnn import host_memory  # noqa: E402

try:
    host_memory.use_mimalloc()  # re-executes this command under mimalloc on CPU-only hosts, once
except ValueError as e:
    sys.exit(f"error: {e}")

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics.jsonl and TensorBoard.")
flags.DEFINE_string(
    "compilation_cache",
    os.path.expanduser("~/.cache/jaxcnn/xla"),
    "JAX's persistent compilation cache: a second launch of the same experiment skips compiling. "
    "'' disables it.",
)
config_flags.DEFINE_config_file("config", None, "Experiment config file (configs/*.py).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # Orbax logs every save at INFO
    import jax
    import tensorflow as tf

    tf.config.set_visible_devices([], "GPU")  # tf.data only; the accelerators belong to JAX
    if FLAGS.compilation_cache:
        jax.config.update("jax_compilation_cache_dir", FLAGS.compilation_cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    from jaxcnn import sharding
    from jaxcnn.train import Preempted, train_and_evaluate

    config = FLAGS.config
    sharding.initialize_distributed(**config.distributed)
    try:
        result = train_and_evaluate(config, FLAGS.workdir)
    except Preempted as e:
        print(str(e), flush=True)
        sys.exit(e.exit_code)  # 0 after SIGTERM: the scheduler restarts the same command, which resumes
    except KeyboardInterrupt:  # Ctrl-C while starting up, before the loop takes over SIGINT
        kept = f"the checkpoints in {FLAGS.workdir} are kept"
        print(f"interrupted (Ctrl-C) before the first step; {kept}", file=sys.stderr)
        sys.exit(130)
    except (ValueError, FileNotFoundError, FloatingPointError) as e:
        sys.exit(f"error: {e}")
    print(
        f"{config.model.name} on {config.dataset.name}: "
        f"test error {100 * result['eval/top1_error']:.2f}% "
        f"(top-5 {100 * result['eval/top5_error']:.2f}%) on "
        f"{int(result['eval/num_examples'])} examples; run in {FLAGS.workdir}"
    )


def run():
    app.run(main)


if __name__ == "__main__":
    run()
