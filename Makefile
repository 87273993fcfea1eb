# avsync — the two commands of the README do all the set-up themselves:
#   make reproduce-sparsesync   # toy SparseSync tables and sparse findings on CPU (< 25 min), or full size with DATA_ROOT=...
#   make test                   # the test suite (CI runs this through .ci/run)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# WEIGHTS=official (with DATA_ROOT): test the authors' published checkpoints instead of training
# (the plan's `official` stages: sparsesync, synchformer, vocalist); results in runs/reproduce/<paper>_official
WEIGHTS_ARG = $(if $(WEIGHTS),--weights $(WEIGHTS))

.PHONY: install test test-all test-fast gate reproduce-all reproduce-sparsesync reproduce-sparsesync-sparse reproduce-sparsesync-artefacts reproduce-avst reproduce-divas reproduce-synchformer reproduce-vocalist bench clean

install: $(STAMP)

# torch 2.11 + torchvision 0.26 + torchaudio 2.11 are pinned together in pyproject.toml
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

# CI's suite (.ci/run): everything but the `slow` end-to-end runs, including the regression gate
test: install
	$(BIN)/python -m pytest -q -ra -m "not slow" -n 2 --durations=15

# the whole suite, `slow` end-to-end runs included (full-size configs built, real-clip full-size step, ...)
test-all: install
	$(BIN)/python -m pytest -q -ra

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not gate"

# the metric-regression gate alone, every entry (`make test` runs the CI entries): seeded toy runs vs pinned baselines
gate: install
	$(BIN)/avsync gate --all

# toy: the tables, then the sparse findings (selectors, lengths, above chance) checked over the seeds
reproduce-sparsesync: install
	$(BIN)/avsync reproduce sparsesync $(if $(DATA_ROOT),--data-root $(DATA_ROOT)) $(WEIGHTS_ARG)
	$(if $(DATA_ROOT),,$(BIN)/python reproductions/sparsesync/sparse_findings.py runs/reproduce/sparsesync | tee runs/reproduce/sparsesync/findings.md)

# How the toy sparse extractors that `reproduce-sparsesync` starts from were made, re-made (issue 22; ~45 min on an
# idle 2-core CPU): stage 0 -> label-free sparse pre-training at 32 then 64 px -> the same sparse stages over it.
# The 64 px pre-training took off in one chain of four (reproductions/sparsesync/README.md, sections 7-10), so a
# re-made chain shows the findings only when its 0c takes off: a diagnostic, not the reproduction.
reproduce-sparsesync-sparse: install
	$(BIN)/avsync reproduce sparsesync --plans reproductions/sparsesync/sparse --out runs/reproduce/sparsesync_sparse
	$(BIN)/python reproductions/sparsesync/sparse_findings.py runs/reproduce/sparsesync_sparse | tee runs/reproduce/sparsesync_sparse/findings.md

# AVST Tables 2-5 at toy scale on CPU (or full size with DATA_ROOT=...), then the paper's findings checked
reproduce-avst: install
	$(BIN)/avsync reproduce avst $(if $(DATA_ROOT),--data-root $(DATA_ROOT))
	$(BIN)/python reproductions/avst/findings.py $(if $(DATA_ROOT),runs/reproduce/avst_full,runs/reproduce/avst)

# DiVAS Tables 1, 2, 4, 5 at toy scale on CPU (multi-frame-rate toy set: 24/25/30 fps train, 60 fps
# held out), or full size with DATA_ROOT=... (lrs2/ and lrs3/ under it)
reproduce-divas: install
	$(BIN)/avsync reproduce divas $(if $(DATA_ROOT),--data-root $(DATA_ROOT))

# Synchformer's tables at toy scale on CPU (< 25 min on an idle 2-core machine), or full size with DATA_ROOT=...
reproduce-synchformer: install
	$(BIN)/avsync reproduce synchformer $(if $(DATA_ROOT),--data-root $(DATA_ROOT)) $(WEIGHTS_ARG)

# VocaLiST Tables 1-2 at toy scale on CPU (speech and toy singing sets; or full size with DATA_ROOT=...), then findings
reproduce-vocalist: install
	$(BIN)/avsync reproduce vocalist $(if $(DATA_ROOT),--data-root $(DATA_ROOT)) $(WEIGHTS_ARG)
	$(if $(WEIGHTS),,$(BIN)/python reproductions/vocalist/findings.py $(if $(DATA_ROOT),runs/reproduce/vocalist_full,runs/reproduce/vocalist))

# every paper's toy tables in turn (each < 20-25 min on an idle 2-core CPU), or full size with DATA_ROOT=...
reproduce-all: reproduce-sparsesync reproduce-avst reproduce-synchformer reproduce-vocalist reproduce-divas

# SparseSync Table 1 (codec artefacts): writes the clips with PyAV, trains the start-time probes
reproduce-sparsesync-artefacts: install
	$(BIN)/python reproductions/sparsesync/artefacts.py

# speed and memory benchmarks -> benchmarks/results/*.md + *.png (~20 min on the 2-core CPU with
# the default --quick; `make bench BENCH_FLAGS=` for the longer runs, BENCH_DEVICE=cuda on a GPU)
BENCH_FLAGS  ?= --quick
BENCH_DEVICE ?= cpu
bench: install
	$(BIN)/python benchmarks/loader_throughput.py $(BENCH_FLAGS)
	$(BIN)/python benchmarks/train_step.py --device $(BENCH_DEVICE) $(BENCH_FLAGS)
	$(BIN)/python benchmarks/inference.py --device $(BENCH_DEVICE) $(BENCH_FLAGS)
	$(BIN)/python benchmarks/pair_windows.py --device $(BENCH_DEVICE) $(BENCH_FLAGS)
	$(BIN)/python benchmarks/sparsesync_memory.py --device $(BENCH_DEVICE) $(BENCH_FLAGS)
	$(BIN)/python benchmarks/speedups.py --device $(BENCH_DEVICE) $(BENCH_FLAGS)

clean:
	rm -rf runs lightning_logs .pytest_cache
