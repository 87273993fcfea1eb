#!/usr/bin/env bash
# On a lent GPU machine: the GPU check (benchmarks/gpu_check.py) with the project's venv.
#   bash benchmarks/gpu_check.sh                      # --device cuda
#   bash benchmarks/gpu_check.sh --device cpu --dry-run
set -euo pipefail
cd "$(dirname "$0")/.."
make install >/dev/null
exec .venv/bin/python benchmarks/gpu_check.py "$@"
