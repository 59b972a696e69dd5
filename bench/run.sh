#!/usr/bin/env bash
# Run a bench script with the 'train' extra (torch, onnx) installed into .venv first (once).
# Usage: bench/run.sh NAME [args]     e.g. bench/run.sh harness_vs_benchmark_app --model decinet_s
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: bench/run.sh NAME [args]  (NAME: $(cd bench && ls [!_]*.py | sed 's/\.py$//' | tr '\n' ' '))" >&2; exit 2; }
name="${1%.py}"; shift
[ -f "bench/$name.py" ] || { echo "ERROR: no bench/$name.py" >&2; exit 2; }
scripts/bootstrap.sh train
# -P: the script puts the checkout on its module path itself; nothing comes from bench/ or the working directory.
exec .venv/bin/python -P "bench/$name.py" "$@"
