"""Quiet start-up for the command lines: TensorFlow (tf.data only) imported without its banner, and
absl's INFO chatter (Orbax logs every save and restore at INFO) turned off.

TensorFlow's C++ libraries print "oneDNN custom operations are on ..." (preceded by absl's "All log
messages before absl::InitializeLog() ..." line) once per library as they load, twice in all, before
TF_CPP_MIN_LOG_LEVEL is read. `import_tensorflow` loads them with the process's stderr pointed at
/dev/null; Python errors of the import are still raised (and printed) as usual. TF_CPP_MIN_LOG_LEVEL=0
keeps the banner.
"""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def _stderr_to_devnull():
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow():
    """Imports TensorFlow (once) without its C++ start-up banner; returns the module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0":
        import tensorflow as tf

        return tf
    with _stderr_to_devnull():
        import tensorflow as tf
    return tf


def quiet_command_line() -> None:
    """What `python -m jaxcnn.main` and `python -m jaxcnn.evaluate` do first in their main()."""
    from absl import logging

    logging.set_verbosity(logging.WARNING)  # Orbax logs every save and restore at INFO
    tf = import_tensorflow()
    tf.config.set_visible_devices([], "GPU")  # tf.data only; the accelerators belong to JAX
