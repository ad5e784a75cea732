# seqrec — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Extra Hydra overrides for train/demo, e.g. make demo ARGS="trainer.max_epochs=5"
ARGS ?=
# Extra pip arguments for torch on machines without a GPU, e.g. the CPU wheel index:
# make test TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
TORCH_PIP_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help install data demo train test test-fast lint clean bench bench-losses bench-gpu pretrain-store pages

help: ## list the targets (coloured on a terminal only)
	@if [ -t 1 ]; then on=$$'\033[36m'; off=$$'\033[0m'; else on=; off=; fi; \
	 awk -v on="$$on" -v off="$$off" 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %s%-14s%s %s\n", on, $$1, off, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@# Without an NVIDIA GPU take the CPU build of torch first (a plain `torch` would pull CUDA).
	@if command -v nvidia-smi >/dev/null 2>&1; then echo "GPU found: torch comes from the dependency range"; \
	 else $(BIN)/pip install --quiet torch==2.13.0 $(TORCH_PIP_ARGS); fi
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install seqrec with its dependencies

data: $(STAMP) ## put the five benchmark datasets and ml-100k into data/ (copy from ../shared/data or download)
	$(BIN)/python -m seqrec.data.fetch --all

demo: install ## set up everything and train SASRec + CCE on LastFM to early stopping (the main job)
	$(BIN)/python -m seqrec.data.fetch lastfm
	$(BIN)/python train.py $(ARGS)

train: demo ## same as demo; pass overrides with ARGS="model=gru4rec loss=bce dataset=beauty"

test: install ## set up everything, lint and format-check (ruff), and run the test suite (CPU; no network)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q

test-fast: install ## ruff, then the test suite without the slow end-to-end subprocess runs
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -q -m "not slow"

lint: install ## fix what ruff can (lint fixes, then the formatter)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## remove caches, run outputs and processed data (keeps the raw data/, outputs/pretrained and .venv)
	rm -rf outputs/runs outputs/multirun .pytest_cache data/processed
	find . -name __pycache__ -prune -exec rm -rf {} +

bench: install data ## CPU benchmark: s/epoch, eval s, peak RSS of each model × loss and each optimisation's speed-up (outputs/bench/)
	$(BIN)/python scripts/bench.py $(ARGS)

bench-losses: install data ## CPU benchmark of the loss family: s/epoch of CE, CCE and each sampled loss at K = 1, 64, 256 (SASRec; outputs/bench-losses/)
	$(BIN)/python scripts/bench.py --loss-family --models sasrec --out outputs/bench-losses $(ARGS)

bench-gpu: install data ## the same on one CUDA GPU for Beauty and Sports + an early-stopped SASRec+CCE on Sports; PRETRAIN=sports,yelp pre-trains S3-Rec there too
	PYTHON=$(BIN)/python PRETRAIN=$(PRETRAIN) scripts/gpu_bench.sh

pretrain-store: install data ## S3-Rec pre-training for DATASETS (default sports,yelp), continued from and stored in results/pretrained/
	PYTHON=$(BIN)/python scripts/pretrain_store.sh $(or $(DATASETS),sports,yelp) $(ARGS)

# ---- Table 2, figures and report (experiment=table2; see docs/protocol.md) ----
# RUNS: where `make table2` writes and `make report` / `make plots` read (a folder of run folders).
RUNS ?= outputs/table2
# (the same two defaults are seqrec.report.runs.DEFAULT_RUNS and SMOKE_RUNS)
SMOKE_DIR := outputs/table2-smoke
# seeds per dataset × model × loss (42, 43, …); JOBS=n runs n at once with hydra-joblib-launcher
SEEDS ?= 1
JOBS ?=
# models of the smoke sweep (S3-Rec pre-trains for 1 epoch there, into <smoke runs>/pretrained)
SMOKE_MODELS ?= gru4rec,sasrec,s3rec
RUNS_GIVEN := $(filter command line environment,$(origin RUNS))
# table2-smoke writes into RUNS when it is given, else into outputs/table2-smoke
SMOKE_RUNS := $(if $(RUNS_GIVEN),$(RUNS),$(SMOKE_DIR))
LAUNCHER := $(if $(JOBS),hydra/launcher=local hydra.launcher.n_jobs=$(JOBS))
# report/plots: --runs only when RUNS is given; otherwise seqrec.report picks outputs/table2, or the
# smoke runs while only those have finished (so `make table2-smoke && make report` works on a fresh
# clone), and says what to run when neither has a finished run.
RUNS_ARG := $(if $(RUNS_GIVEN),--runs $(RUNS))

.PHONY: install-sweep table2 table2-smoke table2-plan gpu-runs report plots

SWEEP_STAMP := $(VENV)/.installed-sweep

install-sweep: $(SWEEP_STAMP) ## add the parallel/Slurm launchers (hydra-joblib-launcher, hydra-submitit-launcher)

$(SWEEP_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[sweep]'
	@touch $(SWEEP_STAMP)

table2: install data ## full Table 2 sweep: 5 datasets × 3 models × 3 losses (SEEDS=3, JOBS=4, ARGS="dataset=lastfm")
	$(BIN)/python train.py -m experiment=table2 seeds=$(SEEDS) hydra.sweep.dir=$(RUNS) $(LAUNCHER) $(ARGS)

# One torch thread per run: LastFM is small, and it keeps the smoke fast on shared CPUs. The 1-epoch
# S3-Rec pre-training goes next to the smoke runs, not into the shared store (outputs/pretrained).
table2-smoke: install ## the table2 sweep on LastFM with 2 epochs (CPU, a few minutes) into outputs/table2-smoke
	SEQREC_PRETRAIN_DIR=$(SMOKE_RUNS)/pretrained $(BIN)/python train.py -m experiment=table2 dataset=lastfm \
	  model=$(SMOKE_MODELS) seeds=$(SEEDS) trainer.max_epochs=2 dataset.pretrain_epochs=1 trainer.progress=false \
	  num_threads=1 hydra.sweep.dir=$(SMOKE_RUNS) $(LAUNCHER) $(ARGS)

table2-plan: install ## what Table 2 still lacks under the seed rule of docs/results.md, as train.py commands
	$(BIN)/python -m seqrec.report.plan

gpu-runs: install data ## on one CUDA GPU within BUDGET s (480): what table2-plan lists, then scripts/gpu_runs.txt, JOBS at a time
	PYTHON=$(BIN)/python BUDGET=$(or $(BUDGET),480) JOBS=$(or $(JOBS),8) scripts/gpu_runs.sh

# The generated blocks of the results page and the README, from the committed result folders
# (tests/test_results.py fails when they differ).
PAGES_CMD := -m seqrec.report --runs results/table2 --beyond results/leaderboard --page docs/results.md --page README.md --pages-only
pages: install ## rebuild the numbers of docs/results.md and README.md from results/ (no training)
	$(BIN)/python $(PAGES_CMD)

report: install ## Table 2 vs the paper, t-tests, RQ2 curves from RUNS (default outputs/table2) into RUNS/report
	$(BIN)/python -m seqrec.report $(RUNS_ARG)

plots: install ## RQ2 curves and RQ3 per-position NDCG@10 (rq3_<dataset>.csv, rq3.png) for RUNS
	$(BIN)/python -m seqrec.analysis $(RUNS_ARG)

# ---- Hyperparameter search (hparams_search=…, Optuna; see README "Tuning") ----
# HPARAMS: a config of conf/hparams_search/; SEARCH: the folder it writes (and tune-report reads)
HPARAMS ?= lastfm_sasrec_cce
SEARCH ?= outputs/search/$(HPARAMS)
TUNE_SEEDS ?= 5
# more options of `python -m seqrec.tune`, e.g. TUNE_ARGS="--overwrite" (replace the best config the
# repository holds), "--name mine" (write it under another name), "--no-rerun"
TUNE_ARGS ?=
TUNE_STAMP := $(VENV)/.installed-tune

.PHONY: install-tune search tune-report

install-tune: $(TUNE_STAMP) ## add Optuna (≥ 4) and optuna-dashboard for hyperparameter searches (the tune extra)

$(TUNE_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[tune]'
	@touch $(TUNE_STAMP)

search: install-tune data ## hyperparameter search HPARAMS=lastfm_sasrec_cce (50 trials; re-run to continue; ARGS="num_threads=1")
	$(BIN)/python train.py -m hparams_search=$(HPARAMS) $(ARGS)

tune-report: install-tune ## trials table, plots, best config → conf/experiment/, rerun with TUNE_SEEDS seeds vs the default (SEARCH=…)
	$(BIN)/python -m seqrec.tune $(SEARCH) --seeds $(TUNE_SEEDS) --train-args "$(ARGS)" $(TUNE_ARGS)
