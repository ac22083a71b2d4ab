"""What every colab/ notebook generator shares: the set-up cell and the writer.

from notebook_cells import SETUP, write   # the generators run as python scripts/make_X.py
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_notebook

SETUP = """# On Colab: fetch jaxcnn and install it with its pinned dependencies (skipped when installed).
import importlib.util, os, subprocess, sys
REPO = os.environ.get('JAXCNN_REPO', 'https://github.com/jaxcnn/jaxcnn')
if importlib.util.find_spec('jaxcnn') is None:
    subprocess.run(['git', 'clone', '-q', REPO, 'jaxcnn'], check=True)
    subprocess.run([sys.executable, '-m', 'pip', 'install', '-q', '-e', 'jaxcnn'], check=True)
    sys.path.insert(0, 'jaxcnn')
# Work from the repository root, where configs/ lives.
for root in ('.', '..', 'jaxcnn'):
    if os.path.isdir(os.path.join(root, 'configs')):
        os.chdir(root)
        break
print(os.getcwd())"""


def write(cells, name: str) -> None:
    """Writes colab/NAME as a Colab notebook (Python 3 kernel, GPU runtime) of `cells`."""
    nb = new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "accelerator": "GPU",
            "colab": {"provenance": []},
        },
    )
    nbformat.write(nb, Path(__file__).resolve().parents[1] / "colab" / name)
