# dlimaging: `make demo` and `make test` are all a new user needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?= -n 2

.PHONY: demo test notebooks bench clean help

help:
	@echo "make demo   create $(VENV), install dlimaging and run the main job (tuning/digits_cnn.toml, offline)"
	@echo "make test   create $(VENV), install the test extras and run the test suite (the notebooks included)"
	@echo "make notebooks  execute notebooks/*.ipynb and write HTML copies with their figures to docs/notebooks/"
	@echo "make bench  run the benchmarks in benchmarks/ (each prints a ratio against plain Keras / keras-tuner)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/dlimaging tune tuning/digits_cnn.toml

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Executes each notebook in a fresh kernel (working directory notebooks/) and writes an HTML copy with
# its outputs; the .ipynb files themselves stay without outputs.
notebooks: $(VENV)/.installed-test
	$(BIN)/python -m nbconvert --to html --execute --ExecutePreprocessor.timeout=600 \
		--output-dir docs/notebooks notebooks/*.ipynb

$(VENV)/.installed-bench: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $@ $(VENV)/.installed-test $(VENV)/.installed

bench: $(VENV)/.installed-bench
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/serving_latency.py
	$(BIN)/python benchmarks/tuning_overhead.py
	$(BIN)/python benchmarks/spectra_vs_pls.py
	$(BIN)/python benchmarks/search_efficiency.py
	$(BIN)/python benchmarks/mnist1d_search.py
	$(BIN)/python benchmarks/restoration.py
	$(BIN)/python benchmarks/segmentation.py
	$(BIN)/python benchmarks/accuracy.py

clean:
	rm -rf $(VENV) runs .pytest_cache docs/notebooks
