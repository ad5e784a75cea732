# seqrec — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Extra Hydra overrides for train/demo, e.g. make demo ARGS="trainer.max_epochs=5"
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install data demo train test test-fast clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@# Without an NVIDIA GPU take the CPU build of torch first (a plain `torch` would pull CUDA).
	@if command -v nvidia-smi >/dev/null 2>&1; then echo "GPU found: torch comes from the dependency range"; \
	 else $(BIN)/pip install --quiet torch==2.13.0; fi
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install seqrec with its dependencies

data: $(STAMP) ## put the five benchmark datasets and ml-100k into data/ (copy from ../shared/data or download)
	$(BIN)/python -m seqrec.data.fetch --all

demo: install data ## set up everything and train SASRec + CCE on LastFM to early stopping (the main job)
	$(BIN)/python train.py $(ARGS)

train: demo ## same as demo; pass overrides with ARGS="model=gru4rec loss=bce dataset=beauty"

test: install ## set up everything and run the test suite (CPU, no network)
	$(BIN)/python -m pytest -q

test-fast: install ## the test suite without the slow end-to-end subprocess runs
	$(BIN)/python -m pytest -q -m "not slow"

clean: ## remove caches and results (keeps data/ and .venv)
	rm -rf outputs/runs outputs/multirun .pytest_cache data/processed
	find . -name __pycache__ -prune -exec rm -rf {} +
