"""Metrics out of the run: WORKDIR/metrics.jsonl (one JSON object per line) and TensorBoard events."""

from __future__ import annotations

import json
import os


class MetricWriter:
    """Appends {"step": s, name: value, ...} lines to metrics.jsonl and scalars to TensorBoard.

    On resume from step s, lines past s (written after the checkpoint by the interrupted run) are
    dropped first, so the file reads as one run; the resumed run writes them again identically.
    Only the writing process (process 0) should create one.
    """

    def __init__(self, workdir: str, resume_step: int = 0):
        os.makedirs(workdir, exist_ok=True)
        self.path = os.path.join(workdir, "metrics.jsonl")
        self._truncate_after(resume_step)
        import tensorflow as tf

        self._tf = tf
        self._tb = tf.summary.create_file_writer(os.path.join(workdir, "tensorboard"))

    def _truncate_after(self, step: int) -> None:
        if not os.path.exists(self.path):
            return
        with open(self.path) as f:
            lines = f.readlines()
        keep = [ln for ln in lines if ln.strip() and json.loads(ln)["step"] <= step]
        if len(keep) != len(lines):
            tmp = self.path + ".tmp"
            with open(tmp, "w") as f:
                f.writelines(keep)
            os.replace(tmp, self.path)  # atomic: a kill here leaves the old or the new file

    def write(self, step: int, metrics: dict[str, float]) -> None:
        record = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        with self._tb.as_default(step=int(step)):
            for name, value in metrics.items():
                self._tf.summary.scalar(name, float(value))
        self._tb.flush()

    def close(self) -> None:
        self._tb.close()


def read_metrics(workdir: str) -> list[dict]:
    """Returns the records of WORKDIR/metrics.jsonl in order."""
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f if line.strip()]
