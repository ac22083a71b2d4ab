"""colab/quickstart.ipynb runs top to bottom (a short training run) and shows its plots."""

import os

import nbformat
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
