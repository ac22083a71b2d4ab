"""metrics.jsonl and TensorBoard events; lines past a resumed step are dropped."""

import os

from jaxcnn.metric_writer import MetricWriter, read_metrics


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
