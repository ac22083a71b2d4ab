"""Metrics out of the run: WORKDIR/metrics.jsonl (one JSON object per line) and TensorBoard events."""

from __future__ import annotations

import json
import os
import warnings


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
        with open(self.path, errors="replace") as f:  # a torn write may end mid-character
            lines = f.readlines()
        records = _parse(lines, self.path)
        if len(records) < len([ln for ln in lines if ln.strip()]):
            warnings.warn(
                f"{self.path}: dropped a half-written last line (the previous run stopped while "
                f"writing it): {lines[-1].strip()[:80]!r}",
                stacklevel=3,
            )
        keep = [line for line, record in records if record["step"] <= step]
        if len(keep) != len(lines):
            tmp = self.path + ".tmp"
            with open(tmp, "w") as f:
                f.writelines(keep)
            os.replace(tmp, self.path)  # atomic: a kill here leaves the old or the new file

    def write(self, step: int, metrics: dict[str, float]) -> None:
        record = {"step": int(step), **{k: float(v) for k, v in metrics.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")  # one write: a kill leaves at most the last line torn
        with self._tb.as_default(step=int(step)):
            for name, value in metrics.items():
                self._tf.summary.scalar(name, float(value))
        self._tb.flush()

    def close(self) -> None:
        self._tb.close()


def _parse(lines: list[str], path: str) -> list[tuple[str, dict]]:
    """(line, record) for each complete line; a torn last line (no newline, or not JSON) is left out.

    Raises:
      ValueError: a line before the last is not a record (not a torn write: the file was edited or
        damaged), naming the file and the line.
    """
    parsed = []
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or not isinstance(record.get("step"), int):
                raise ValueError("no integer 'step'")
        except ValueError as e:
            if i == last:
                break
            text = line.strip()[:80]
            raise ValueError(f"{path} line {i + 1} is not a metrics record ({e}): {text!r}") from None
        if i == last and not line.endswith("\n"):
            break  # complete JSON but the write stopped before its newline: still a torn line
        parsed.append((line, record))
    return parsed


def has_record(workdir: str, step: int, key: str) -> bool:
    """Whether WORKDIR/metrics.jsonl holds `key` at `step` (False when there is no file)."""
    path = os.path.join(workdir, "metrics.jsonl")
    if not os.path.exists(path):
        return False
    with open(path, errors="replace") as f:
        return any(r["step"] == step and key in r for _, r in _parse(f.readlines(), path))


def read_metrics(workdir: str) -> list[dict]:
    """Returns the records of WORKDIR/metrics.jsonl in order (without a torn, half-written last line)."""
    path = os.path.join(workdir, "metrics.jsonl")
    with open(path, errors="replace") as f:
        return [record for _, record in _parse(f.readlines(), path)]
