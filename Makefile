# One command to run, one to test (see README). Everything installs into .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE := 1

.PHONY: setup setup-test run test bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first and pinned: an unpinned torch pulls several GB of CUDA wheels.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e .
	touch $@

# llama-cpp-python (test extra) compiles from source once (~12 min on 2 cores); pip caches the wheel.
$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install -q -e ".[test]"
	touch $@

setup: $(VENV)/.installed
setup-test: $(VENV)/.installed-test

# The web chat on http://127.0.0.1:7860 (`rag ui` ingests seeds/ first when the collection is empty).
run: setup
	$(BIN)/rag ui

test: setup-test
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/benchmark.py

clean:
	rm -rf $(VENV) .rag
