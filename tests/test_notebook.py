"""colab/ notebooks run top to bottom: the quickstart (a short run, its plots) and transfer learning."""

import os

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
