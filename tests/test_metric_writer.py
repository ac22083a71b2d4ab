"""metrics.jsonl and TensorBoard events; lines past a resumed step, and a torn last line, are dropped."""

import json
import os

import pytest

from jaxcnn.metric_writer import MetricWriter, has_record, read_metrics


def test_lines_have_step_and_values_and_events_exist(tmp_path):
    w = MetricWriter(str(tmp_path))
    w.write(10, {"train/loss": 1.5})
    w.write(20, {"eval/top1_error": 0.25})
    w.close()
    assert read_metrics(str(tmp_path)) == [
        {"step": 10, "train/loss": 1.5},
        {"step": 20, "eval/top1_error": 0.25},
    ]
    events = os.listdir(tmp_path / "tensorboard")
    assert any(e.startswith("events.out.tfevents") for e in events)


def test_resume_drops_lines_after_the_checkpoint(tmp_path):
    w = MetricWriter(str(tmp_path))
    for step in (10, 20, 30):
        w.write(step, {"train/loss": float(step)})
    w.close()
    MetricWriter(str(tmp_path), resume_step=20).close()
    assert [r["step"] for r in read_metrics(str(tmp_path))] == [10, 20]


def _lines(tmp_path, *records, torn=""):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + torn)
    return path


def test_a_torn_last_line_is_dropped_with_a_warning_naming_the_file(tmp_path):
    # What a kill (or a full disk) in the middle of write() leaves: today `Unterminated string`.
    path = _lines(tmp_path, {"step": 10, "train/loss": 1.0}, torn='{"step": 20, "train/lo')
    assert read_metrics(str(tmp_path)) == [{"step": 10, "train/loss": 1.0}]  # a live reader skips it
    with pytest.warns(UserWarning, match=f"{path}: dropped a half-written last line"):
        w = MetricWriter(str(tmp_path), resume_step=10)
    w.write(20, {"train/loss": 2.0})
    w.close()
    assert read_metrics(str(tmp_path)) == [{"step": 10, "train/loss": 1.0}, {"step": 20, "train/loss": 2.0}]


def test_a_complete_record_without_its_newline_is_torn_too(tmp_path):
    _lines(tmp_path, {"step": 10, "x": 1.0}, torn=json.dumps({"step": 20, "x": 2.0}))
    with pytest.warns(UserWarning, match="half-written"):
        MetricWriter(str(tmp_path), resume_step=20).close()
    assert (tmp_path / "metrics.jsonl").read_text() == json.dumps({"step": 10, "x": 1.0}) + "\n"


def test_a_damaged_line_before_the_last_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 10}\nnot json\n{"step": 20}\n')
    with pytest.raises(ValueError, match=f"{path} line 2 is not a metrics record"):
        MetricWriter(str(tmp_path), resume_step=20)


def test_has_record(tmp_path):
    assert not has_record(str(tmp_path), 10, "eval/top1_error")
    _lines(tmp_path, {"step": 10, "train/loss": 1.0}, {"step": 10, "eval/top1_error": 0.5})
    assert has_record(str(tmp_path), 10, "eval/top1_error")
    assert not has_record(str(tmp_path), 20, "eval/top1_error")
