# avsync — the two commands of the README do all the set-up themselves:
#   make reproduce-sparsesync   # toy SparseSync tables on CPU (< 20 min), or full size with DATA_ROOT=...
#   make test                   # the test suite (CI runs this through .ci/run)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install test test-fast reproduce-sparsesync reproduce-sparsesync-artefacts reproduce-synchformer bench clean

install: $(STAMP)

# torch 2.11 + torchvision 0.26 + torchaudio 2.11 are pinned together in pyproject.toml
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

test: install
	$(BIN)/python -m pytest -q -ra

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

reproduce-sparsesync: install
	$(BIN)/avsync reproduce sparsesync $(if $(DATA_ROOT),--data-root $(DATA_ROOT))

# Synchformer's tables at toy scale on CPU (< 25 min on an idle 2-core machine), or full size with DATA_ROOT=...
reproduce-synchformer: install
	$(BIN)/avsync reproduce synchformer $(if $(DATA_ROOT),--data-root $(DATA_ROOT))

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
	$(BIN)/python benchmarks/sparsesync_memory.py --device $(BENCH_DEVICE) $(BENCH_FLAGS)
	$(BIN)/python benchmarks/speedups.py --device $(BENCH_DEVICE) $(BENCH_FLAGS)

clean:
	rm -rf runs lightning_logs .pytest_cache
