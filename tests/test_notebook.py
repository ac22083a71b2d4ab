"""The notebooks under colab/ run top to bottom with tiny step counts: quickstart.ipynb (a short
training run and its plots), reproduce.ipynb (a sweep and its report), tpu.ipynb (its cells that run
on any backend), segmentation.ipynb and transfer_learning.ipynb."""

import ast
import os
import re

import nbformat
import pytest
from nbclient import NotebookClient


def test_quickstart_notebook_runs(mnist_split, tmp_path, monkeypatch, root):
    monkeypatch.setenv("QUICKSTART_STEPS", "150")
    monkeypatch.setenv("QUICKSTART_WORKDIR", str(tmp_path / "run"))
    nb = nbformat.read(root / "colab" / "quickstart.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, resources={"metadata": {"path": str(root / "colab")}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs)
    assert "test error" in text and "digits in this batch are wrong" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the learning curves and the digits
    assert os.path.exists(tmp_path / "run" / "metrics.jsonl")


def _run(root, name):
    nb = nbformat.read(root / "colab" / name, as_version=4)
    NotebookClient(nb, timeout=900, resources={"metadata": {"path": str(root / "colab")}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs)
    return outputs, text


@pytest.mark.parametrize("name", ["reproduce.ipynb", "tpu.ipynb"])
def test_notebooks_are_valid_and_import_only_the_public_package(root, name):
    nb = nbformat.read(root / "colab" / name, as_version=4)
    nbformat.validate(nb)
    code = [cell.source for cell in nb.cells if cell.cell_type == "code"]
    for source in code:
        ast.parse(source)  # no shell magics: the cells run in a plain kernel
    imports = re.findall(r"^\s*(?:from|import) (jaxcnn\S*)", "\n".join(code), re.M)
    assert imports and not [m for m in imports if any(p.startswith("_") for p in m.split("."))]


@pytest.mark.slow
def test_reproduce_notebook_runs_a_sweep_and_shows_the_report(mnist_split, tmp_path, monkeypatch, root):
    monkeypatch.setenv("REPRODUCE_STEPS", "20")
    monkeypatch.setenv("REPRODUCE_WORKDIR", str(tmp_path / "sweep"))
    outputs, text = _run(root, "reproduce.ipynb")
    assert "4 runs in" in text and "4 trained" in text and "4 skipped" in text  # then rerun: nothing trained
    tables = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert len(tables) == 1
    assert re.search(r"\| input.train_augment=none \| 2 \| .* \| 0.95 \(", tables[0])
    assert re.search(r"\| input.train_augment=lecun_distortions \| 2 \| .* \| 0.80 \(", tables[0])
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 3  # training loss, training error, test error
    assert os.path.exists(
        tmp_path / "sweep" / "input.train_augment=lecun_distortions" / "seed=1" / "metrics.jsonl"
    )


@pytest.mark.slow
def test_tpu_notebook_runs_its_portable_cells(mnist_split, tmp_path, monkeypatch, root):
    monkeypatch.setenv("TPU_NOTEBOOK_STEPS", "20")
    monkeypatch.setenv("TPU_NOTEBOOK_WORKDIR", str(tmp_path / "tpu" / "lenet5"))
    monkeypatch.delenv("JAXCNN_BUCKET", raising=False)
    _, text = _run(root, "tpu.ipynb")
    assert "cpu 2 devices" in text  # the backend check ran; the TPU-only cells were skipped
    assert "test error" in text and "resumed at step 20: this call logged steps 24 ... 40" in text
    jobs = open(tmp_path / "tpu" / "jobs.txt").read().splitlines()
    assert len(jobs) == 8 and all(line.startswith("python -m jaxcnn.main") for line in jobs)
    assert "fig6/model.name=plain56/seed=1" in "".join(jobs)


def test_segmentation_notebook_runs(tmp_path, monkeypatch, root):
    monkeypatch.setenv("SEGMENTATION_DATA", str(tmp_path / "canvas"))
    monkeypatch.setenv("SEGMENTATION_CANVASES", "16")
    monkeypatch.setenv("SEGMENTATION_STEPS", "4")
    monkeypatch.setenv("SEGMENTATION_WORKDIR", str(tmp_path / "run"))
    nb = nbformat.read(root / "colab" / "segmentation.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, resources={"metadata": {"path": str(root / "colab")}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs)
    assert "mean IoU" in text and "of these canvases' pixels are wrong" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1  # image / true mask / predicted mask, side by side
    assert os.path.exists(tmp_path / "run" / "metrics.jsonl")


def _run_transfer_notebook(root, tmp_path, monkeypatch, **env):
    for key, value in {"TL_STEPS": "2", "TL_IMAGES": "2", "TL_OFFLINE": "1", **env}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TL_WORKDIR", str(tmp_path / "tl"))
    monkeypatch.setenv("JAXCNN_CACHE", str(tmp_path / "cache"))
    nb = nbformat.read(root / "colab" / "transfer_learning.ipynb", as_version=4)
    NotebookClient(nb, timeout=1200, resources={"metadata": {"path": str(root / "colab")}}).execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    text = "".join(o.get("text", "") for o in outputs)
    assert "RANDOM torchvision weights" in text  # offline: the path= fallback, said so
    assert "linear probe: test error" in text and "fine-tuned: test error" in text
    assert text.count("predicted ") == 4 and "pooled (4, " in text  # 4 test images (2 per class)
    assert len([o for o in outputs if "image/png" in o.get("data", {})]) == 1
    return text


@pytest.mark.slow  # two training runs, evaluations and a kernel: minutes on 2 CPU cores; the same code
# path runs fast in tests/test_finetune.py (probe, init from a file) and tests/test_extract.py (features)
def test_transfer_learning_notebook_runs_with_small_models(root, tmp_path, monkeypatch):
    """The notebook's code path with ResNet-18 in both parts, at 32x32 (seconds per step on a CPU)."""
    text = _run_transfer_notebook(
        root, tmp_path, monkeypatch, TL_PROBE_MODEL="resnet18", TL_FINETUNE_MODEL="resnet18", TL_SIZE="32"
    )
    assert "resnet18 linear probe" in text


@pytest.mark.slow
def test_transfer_learning_notebook_runs(root, tmp_path, monkeypatch):
    """As published: Inception V3 (at its smallest input, 75) and ResNet-50 (64), two steps each."""
    text = _run_transfer_notebook(root, tmp_path, monkeypatch, TL_INCEPTION_SIZE="75", TL_SIZE="64")
    assert "inception_v3 linear probe" in text and "resnet50 fine-tuned" in text
