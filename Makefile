# dlimaging: `make demo` and `make test` are all a new user needs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?= -n 2

.PHONY: demo test bench clean help

help:
	@echo "make demo   create $(VENV), install dlimaging and run the main job (tuning/digits_cnn.toml, offline)"
	@echo "make test   create $(VENV), install the test extras and run the test suite"
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

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/train_throughput.py
	$(BIN)/python benchmarks/serving_latency.py
	$(BIN)/python benchmarks/tuning_overhead.py
	$(BIN)/python benchmarks/spectra_vs_pls.py
	$(BIN)/python benchmarks/accuracy.py

clean:
	rm -rf $(VENV) runs .pytest_cache
