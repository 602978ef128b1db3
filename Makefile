# Two commands set everything up on a fresh machine:
#   make train   install into .venv, then train the default model on the embedded sample
#   make test    install into .venv (with test tools), then run the test suite
# CONSTRAINTS pins torch==2.13.0, the version of the measured figures; pip takes a CPU
# wheel of it where its configuration offers one. `make train CONSTRAINTS=` lets pip
# choose torch (see README).

PYTHON ?= python3
VENV ?= .venv
CONSTRAINTS ?= constraints-cpu.txt
ARGS ?=
BIN = $(VENV)/bin
PIP_CONSTRAINTS = $(if $(CONSTRAINTS),-c $(CONSTRAINTS),)

DATA_DIR ?= $(abspath ../shared/data)

.PHONY: install train test test-all lint gpu-bundle bench bench-generate bench-translate bench-bleu-vs-time sst2 compare clean

$(BIN)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(PIP_CONSTRAINTS) -e '.[dev]'
	touch $@

install: $(BIN)/.installed

train: install
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/nlpseq-train $(ARGS)

# two pytest workers (most integration tests wait on one-core CLI start-up); one file per
# worker, so a file's shared trained model (module or session fixture) is built once
test: install
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile $(ARGS)

test-all: install
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile -m "slow or not slow" $(ARGS)

test-slow: install
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile -m slow $(ARGS)

lint: install
	$(BIN)/ruff check nlpseq tests scripts

# What scripts/gpu_checks.sh needs on a GPU machine that has PyTorch and Lightning only, in
# .gpu/ (ignored by git): wheels (Python 3.12) of the other dependencies, at the versions
# installed in .venv, and the data (copied writable, so that a rerun can replace it).
GPU_WHEELS = datasets|hydra-core|omegaconf|dill|multiprocess
gpu-bundle: install
	rm -rf .gpu && mkdir -p .gpu/data
	$(BIN)/pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
	  --implementation cp --platform manylinux2014_x86_64 -d .gpu/wheels \
	  $$($(BIN)/pip freeze | grep -iE '^($(GPU_WHEELS))==')
	$(BIN)/pip wheel --quiet --no-deps -w .gpu/wheels \
	  $$($(BIN)/pip freeze | grep -i '^antlr4-python3-runtime==')  # no wheel on PyPI: built here
	cp -r --no-preserve=mode $(DATA_DIR)/sst2 $(DATA_DIR)/ptb $(DATA_DIR)/tinyshakespeare .gpu/data/
	du -sh .gpu

# RNN vs LSTM vs GRU on SST-2, 3 seeds each, then the comparison report (ARGS: overrides)
compare: install
	NLPSEQ_DATA_DIR=$(DATA_DIR) HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/nlpseq-train -m \
	  experiment=sst2 encoder=rnn,lstm,gru seed=1,2,3 hydra.sweep.dir=outputs/multirun/sst2_cells \
	  $(ARGS); status=$$?; $(BIN)/nlpseq-report outputs/multirun/sst2_cells && exit $$status

bench: install
	NLPSEQ_DATA_DIR=$(DATA_DIR) $(BIN)/python scripts/bench_train_step.py $(ARGS)

bench-generate: install
	NLPSEQ_DATA_DIR=$(DATA_DIR) $(BIN)/python scripts/bench_generation.py $(ARGS)

# nlpseq vs JoeyNMT on Multi30k (same model, data and budget), then greedy vs beam-5 speed.
bench-translate: install
	NLPSEQ_DATA_DIR=$(DATA_DIR) $(BIN)/python scripts/bench_translation.py $(ARGS)

# Test BLEU against training time: nlpseq with and without length buckets, JoeyNMT 2.3.0 in
# the matched and in its own recommended set-up, 3 seeds (CPU-hours; ARGS: --budgets, --seeds,
# --joey-python; see scripts/bench_bleu_vs_time.py).
bench-bleu-vs-time: install
	$(BIN)/python scripts/bench_bleu_vs_time.py --data-dir $(DATA_DIR) $(ARGS)

# The SST-2 table of docs/results.md: the three cells, one run each (up to 46 min a cell on 2 CPU cores).
sst2: install
	NLPSEQ_DATA_DIR=$(DATA_DIR) HF_HUB_OFFLINE=1 $(BIN)/nlpseq-train -m experiment=sst2 \
		encoder=lstm,gru,rnn trainer.enable_progress_bar=false $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
