"""benchmarks/: the harness runs end to end for jaxcnn, Keras (JAX) and torchvision at tiny sizes
and regenerates the README table; its pieces reject bad input. Speed itself is not tested."""

import json
import shutil
import subprocess
import sys
import types

import pytest
from helpers import ROOT

from benchmarks import measure, report, run, workloads
from benchmarks.proc import child_env
from benchmarks.step_common import TrainStep

POSITIVE = ("images_per_s", "step_s", "first_step_s", "num_params", "peak_rss_mb", "baseline_rss_mb", "mfu")


@pytest.fixture(scope="module")
def end_to_end(tmp_path_factory):
    """One real `python -m benchmarks.run` at 32x32, batch 2: LeNet-5 (jaxcnn only) and VGG-16
    (all three peers, Keras' cheapest network to compile), with the launch timing on LeNet-5."""
    tmp = tmp_path_factory.mktemp("bench")
    readme = tmp / "README.md"
    shutil.copy(ROOT / "benchmarks" / "README.md", readme)
    out = tmp / "results.json"
    args = ["--models", "lenet5,vgg16", "--peers", "jaxcnn,keras,torch", "--batch_size", "2"]
    args += ["--image_size", "32", "--steps", "1", "--first_step_model", "lenet5", "--matmul_size", "1024"]
    args += ["--out", str(out), "--readme", str(readme)]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", *args],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text()), readme.read_text(), done.stdout


def test_every_peer_measures_positive_numbers(end_to_end):
    results, _, _ = end_to_end
    rows = {row["model"]: row for row in results["rows"]}
    assert set(rows) == {"lenet5", "vgg16"}
    measured = [("lenet5", "jaxcnn"), ("vgg16", "jaxcnn"), ("vgg16", "keras"), ("vgg16", "torch")]
    for model, peer in measured:
        m = rows[model][peer]
        assert "error" not in m, (model, peer, m)
        assert m["input_shape"][:2] == [32, 32] and m["batch_size"] == 2
        for key in POSITIVE:
            assert m[key] > 0, (model, peer, key, m[key])
        assert m["peak_rss_mb"] >= m["baseline_rss_mb"]
        assert m["compile_s"] >= 0
    assert "keras" not in rows["lenet5"] and "torch" not in rows["lenet5"]  # no peer has LeNet-5
    # The same architecture: jaxcnn's VGG-16 and torchvision's have the same parameters.
    assert rows["vgg16"]["jaxcnn"]["num_params"] == rows["vgg16"]["torch"]["num_params"] == 138_357_544


def test_context_matmul_peak_and_launch_times(end_to_end):
    results, _, _ = end_to_end
    assert results["machine"]["cores"] >= 1 and results["versions"]["jax"]
    assert results["versions"]["keras"] and results["versions"]["torch"]
    assert results["matmul"]["jax_gflops"] > 0
    assert results["matmul"]["peak_gflops"] >= results["matmul"]["jax_gflops"]
    launch = results["first_step"]
    assert launch["cache_entries"] > 0  # the cold launch filled the persistent cache
    for phase in ("cold", "warm"):
        times = launch[phase]
        assert times["first_step_s"] > times["start_s"] > 0 and times["first_step_s"] > times["step_s"] > 0


def test_readme_block_is_regenerated(end_to_end):
    results, readme, stdout = end_to_end
    before, _, rest = readme.partition(report.BEGIN)
    block, _, after = rest.partition(report.END)
    original = (ROOT / "benchmarks" / "README.md").read_text()
    assert original.startswith(before) and original.endswith(after)  # hand-written text kept
    assert block.strip() == report.render(results) == stdout.strip()
    vgg = next(line for line in block.splitlines() if line.startswith("| vgg16 | 2 |"))
    ratio = results["rows"][1]["jaxcnn"]["images_per_s"] / results["rows"][1]["keras"]["images_per_s"]
    assert f"**{ratio:.2f}**" in vgg


def test_ratios_are_jaxcnn_over_peer_and_failures_are_listed():
    def m(rate):
        return {"images_per_s": rate, "compile_s": 1.0, "peak_rss_mb": 10.0, "baseline_rss_mb": 5.0,
                "num_params": 7, "mfu": 0.5, "input_shape": [224, 224, 3]}  # fmt: skip

    results = {
        "date": "today",
        "machine": {"cpu": "cpu", "cores": 2, "memory_gib": 1.0, "python": "3.11"},
        "versions": {"jax": "0"},
        "load_before": [0, 0, 0],
        "load_after": [0, 0, 0],
        "matmul": {"size": 8, "jax_gflops": 10.0, "peak_gflops": 10.0},
        "rows": [
            {
                "model": "a",
                "batch_size": 4,
                "gflop_per_image": 1.0,
                "note": "",
                "jaxcnn": m(3.0),
                "keras": m(2.0),
                "torch": {"error": "boom"},
            },
        ],  # fmt: skip
        "input_pipeline": {"images_per_second": {"224": 1234.0}},
    }
    table = report.render(results)
    row = next(line for line in table.splitlines() if line.startswith("| a | 4 |"))
    assert "**1.50**" in row and "| error |" in row and "1,234" in row
    assert "- a / torch: boom" in table


def test_update_readme_needs_the_markers(tmp_path):
    path = tmp_path / "README.md"
    path.write_text("# no block here\n")
    with pytest.raises(ValueError, match="no generated block"):
        report.update_readme(str(path), "table")


def test_train_flops_are_six_times_forward_macs():
    assert run.model_gflop_per_image("resnet50") == pytest.approx(6 * 4.089)
    assert 0 < run.model_gflop_per_image("lenet5") < 0.01  # counted by jaxcnn.summary
    assert run.model_gflop_per_image("resnet50", 112) < run.model_gflop_per_image("resnet50") / 3


def test_keras_resnet50_is_paired_with_the_v1_network():
    assert workloads.get("resnet50_v1").keras == "ResNet50"
    assert workloads.get("resnet50").keras is None and workloads.get("resnet50").torch == "resnet50"
    with pytest.raises(ValueError, match="not benchmarked"):
        workloads.get("resnet51")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--models", "resnet51"], "unknown model"),
        (["--peers", "jaxcnn,mxnet"], "unknown peer"),
        (["--steps", "0"], "--steps, --rounds and --matmul_size >= 1"),
        (["--rounds", "0"], "--steps, --rounds and --matmul_size >= 1"),
    ],
)
def test_cli_rejects_bad_arguments(args, message, capsys):
    with pytest.raises(SystemExit) as e:
        run.main(args)
    assert e.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    "peer,network,message",
    [
        ("keras", "ResNet51", "unknown Keras application 'ResNet51'"),
        ("torch", "resnet51", "unknown torchvision classification model 'resnet51'"),
    ],
)
def test_peers_reject_unknown_networks(peer, network, message):
    # In a fresh process, as the harness runs each peer: torch's triton import crashes in a process
    # that has already loaded TensorFlow and JAX (the test process).
    code = f"from benchmarks import step_{peer}; step_{peer}.build({network!r}, 2)"
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=child_env(), capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 1 and f"ValueError: {message}" in proc.stderr


def test_rounds_keep_the_median_measurement_and_every_step_time():
    rounds = [{"step_s": 3.0, "x": "a"}, {"error": "timeout"}, {"step_s": 1.0, "x": "b"}]
    rounds.append({"step_s": 2.0, "x": "c"})
    kept = run.median_round(rounds)
    assert kept["x"] == "c" and kept["step_s"] == 2.0
    assert kept["step_s_rounds"] == [3.0, None, 1.0, 2.0]
    assert run.median_round([{"error": "timeout"}]) == {"error": "timeout"}  # all failed: the reason
    assert "measured 3 times" in report.rounds_note({"settings": {"rounds": 3}})
    assert report.rounds_note({"settings": {"rounds": 1}}) == ""


def _run_accelerator_mode(tmp, peers: str):
    """`python -m benchmarks.run --mode accelerator` on this CPU at tiny sizes: ResNet-18 at 32x32,
    batch 4, windows of 2 steps, with the input pipeline on 16 generated JPEGs."""
    readme = tmp / "README.md"
    shutil.copy(ROOT / "benchmarks" / "README.md", readme)
    out = tmp / "results.json"
    args = ["--mode", "accelerator", "--models", "resnet18", "--peers", peers]
    args += ["--batch_size", "4", "--image_size", "32", "--steps", "1", "--window_steps", "2"]
    args += ["--matmul_size", "256", "--input_pipeline_images", "16"]
    args += ["--out", str(out), "--readme", str(readme)]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", *args],
        cwd=ROOT,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(out.read_text()), readme.read_text(), done.stdout


@pytest.fixture(scope="module")
def accelerator_run(tmp_path_factory):
    """jaxcnn and torchvision eager; the torch.compile peer has its own (slow) test below."""
    return _run_accelerator_mode(tmp_path_factory.mktemp("bench_accelerator"), "jaxcnn,torch")


def _check_measured(row, peer):
    m = row[peer]
    assert "error" not in m, (peer, m)
    settings = (m["mode"], m["precision"], m["steps_per_window"], m["batch_size"])
    assert settings == ("accelerator", "bfloat16", 2, 4)
    assert m["input_shape"] == [32, 32, 3] and m["images_per_s"] > 0 and m["mfu"] > 0


def test_accelerator_mode_measures_bf16_windows_and_the_input_pipeline(accelerator_run):
    results, _, _ = accelerator_run
    assert results["settings"]["mode"] == "accelerator" and results["settings"]["precision"] == "bfloat16"
    assert results["matmul"]["dtype"] == "bfloat16" and results["matmul"]["peak_gflops"] > 0
    assert results["accelerator"]["backend"] == "cpu"  # forced by the flag on this machine
    (row,) = results["rows"]
    for peer in ("jaxcnn", "torch"):
        _check_measured(row, peer)
    assert row["jaxcnn"]["num_params"] == row["torch"]["num_params"] == 11_689_512
    pipeline = results["input_pipeline"]
    assert "error" not in pipeline, pipeline
    assert pipeline["images"] == 16 and pipeline["images_per_second"]["224"] > 0


def test_accelerator_block_is_written_and_the_cpu_table_kept(accelerator_run):
    results, readme, stdout = accelerator_run
    original = (ROOT / "benchmarks" / "README.md").read_text()
    before, _, rest = readme.partition(report.ACCELERATOR_BEGIN)
    block, _, after = rest.partition(report.ACCELERATOR_END)
    assert original.startswith(before) and original.endswith(after)  # the CPU table is untouched
    assert block.strip() == report.render(results) == stdout.strip()
    line = next(ln for ln in block.splitlines() if ln.startswith("| resnet18 | 4 |"))
    row = results["rows"][0]
    ratio = row["jaxcnn"]["images_per_s"] / row["torch"]["images_per_s"]
    assert f"**{ratio:.2f}**" in line
    rate = results["input_pipeline"]["images_per_second"]["224"]
    assert line.endswith(f"| – | – | {rate:,.0f} |")  # no torch.compile here; the pipeline's rate last


@pytest.mark.slow  # inductor compiles ResNet-18's C++ kernels on the CPU: about a minute of CPU time
def test_accelerator_mode_with_the_torch_compile_peer(tmp_path):
    results, readme, _ = _run_accelerator_mode(tmp_path, "jaxcnn,torch,torch_compile")
    (row,) = results["rows"]
    for peer in ("jaxcnn", "torch", "torch_compile"):
        _check_measured(row, peer)
    assert row["torch_compile"]["num_params"] == row["torch"]["num_params"]
    line = next(ln for ln in readme.splitlines() if ln.startswith("| resnet18 | 4 |"))
    ratio = row["jaxcnn"]["images_per_s"] / row["torch_compile"]["images_per_s"]
    assert f"**{ratio:.2f}** |" in line


class _CountingStep:
    """A fake peer whose steps and syncs are counted (measure imports benchmarks.step_<peer>)."""

    def __init__(self):
        self.calls = []

    def build(self, network, batch_size, image_size=0, precision="float32"):
        self.precision = precision
        step = lambda: self.calls.append("step")
        sync = lambda: self.calls.append("sync") or 1.0
        return TrainStep(step=step, sync=sync, num_params=1, input_shape=(8, 8, 3))


@pytest.mark.parametrize("mode", ["cpu", "accelerator"])
def test_accelerator_windows_sync_once_cpu_mode_every_step(mode, monkeypatch):
    fake = _CountingStep()
    monkeypatch.setitem(sys.modules, "benchmarks.step_counting", types.SimpleNamespace(build=fake.build))
    result = measure.measure("counting", "net", 2, samples=3, mode=mode, window_steps=5)
    timed = fake.calls[4:]  # after the first and the warm step, each a step and its sync
    assert fake.calls[:4] == ["step", "sync"] * 2 and result["steps_timed"] == 15
    if mode == "accelerator":
        assert fake.precision == "bfloat16" and timed == (["step"] * 5 + ["sync"]) * 3
    else:
        assert fake.precision == "float32" and timed == ["step", "sync"] * 15


def test_mode_auto_is_cpu_here_and_flags_choose_the_defaults():
    assert run.resolve_mode("auto") == "cpu" and run.resolve_mode("accelerator") == "accelerator"
    assert workloads.peer_network(workloads.get("resnet50"), "torch_compile") == "resnet50"
    with pytest.raises(ValueError, match="mode must be one of cpu, accelerator"):
        measure.measure("jaxcnn", "lenet5", 2, 1, mode="gpu")
