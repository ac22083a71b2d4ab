"""Command line: python -m jaxcnn.main --config=configs/X.py[:ARG] --workdir=DIR [--config.KEY=VALUE ...].

--config names a recipe (configs/*.py, its get_config(ARG)); --config.KEY=VALUE overrides one of
its keys (dotted, e.g. --config.optimizer.base_learning_rate=0.05). On a CPU-only Linux host the
command re-executes itself under mimalloc first (jaxcnn/host_memory.py, done when the jaxcnn
package is imported, before JAX).
"""

from __future__ import annotations

import functools
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out

from absl import app, flags  # noqa: E402

from jaxcnn import config_lib  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("workdir", None, "Directory for checkpoints, metrics.jsonl and TensorBoard.")
flags.DEFINE_string(
    "compilation_cache",
    os.path.expanduser("~/.cache/jaxcnn/xla"),
    "JAX's persistent compilation cache: a second launch of the same experiment skips compiling. "
    "'' disables it.",
)
flags.mark_flags_as_required(["workdir"])


def main(argv, config):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from jaxcnn import startup

    startup.quiet_command_line()  # no TensorFlow banner, no absl INFO; tf.data sees no GPU
    import jax

    if FLAGS.compilation_cache:
        jax.config.update("jax_compilation_cache_dir", FLAGS.compilation_cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)
    from jaxcnn import sharding
    from jaxcnn.checkpoint import CheckpointWriteError
    from jaxcnn.train import Preempted, train_and_evaluate

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
    except (ValueError, FileNotFoundError, FloatingPointError, MemoryError, CheckpointWriteError) as e:
        sys.exit(f"error: {e}")
    if "eval/mean_iou" in result:  # a segmentation run
        from jaxcnn import segmentation

        described = segmentation.describe(result)
        print(f"{config.model.name} on {config.dataset.name}: {described}; run in {FLAGS.workdir}")
        return
    print(
        f"{config.model.name} on {config.dataset.name}: "
        f"test error {100 * result['eval/top1_error']:.2f}% "
        f"(top-5 {100 * result['eval/top5_error']:.2f}%) on "
        f"{int(result['eval/num_examples'])} examples; run in {FLAGS.workdir}"
    )


def run():
    config, argv = config_lib.config_or_exit(sys.argv)  # --config and --config.KEY=VALUE, checked
    app.run(functools.partial(main, config=config), argv=argv)


if __name__ == "__main__":
    run()
