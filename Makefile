# Two entry points: `make demo` (main job) and `make test` (test suite). Both set up .venv incrementally.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export MUJOCO_GL ?= egl
export PYOPENGL_PLATFORM ?= egl

.PHONY: setup setup-d3rlpy demo test test-all lint format clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first, from local wheels, so pip never fetches another torch.
$(VENV)/.torch-stamp: | $(BIN)/python
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	touch $@

$(VENV)/.pkg-stamp: pyproject.toml $(VENV)/.torch-stamp
	$(BIN)/pip install -q -e ".[dev,pusht]" torch==2.14.1 torchvision==0.29.1
	touch $@

setup: $(VENV)/.pkg-stamp

# The optional [d3rlpy] extra: d3rlpy pins gymnasium==1.0.0, so it goes in without its pins, then the small
# packages it imports (gym only for its spaces).
setup-d3rlpy: setup
	$(BIN)/pip install -q --no-deps "d3rlpy>=2.6"
	$(BIN)/pip install -q gym==0.26.2 colorama dataclasses-json structlog scikit-learn torch==2.14.1 torchvision==0.29.1

demo: setup
	$(BIN)/python -m worldmodels.demo --out runs/demo

# CI's subset: everything but the slow checks, plus the one end-to-end smoke run.
test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -m "not slow or e2e" -q

test-all: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
