#!/usr/bin/env bash
# Run a bench with the 'train' extra (torch, onnx) installed into .venv first (once).
# Usage: bench/run.sh NAME [args]     e.g. bench/run.sh harness_vs_benchmark_app --model decinet_s
# It runs `python -P -m bench.NAME` from the checkout, whatever the working directory.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() { echo "usage: bench/run.sh NAME [args]  (NAME: $(cd bench && ls [!_]*.py | sed 's/\.py$//' | paste -sd' '))"; }
[ $# -ge 1 ] || { usage >&2; exit 2; }
case "$1" in -h|--help) usage; exit 0 ;; esac
name="${1%.py}"; name="${name#bench/}"; shift
# A bench is bench/NAME.py with NAME a plain module name; the bench/_*.py helpers are not benches.
[[ "$name" =~ ^[a-z][a-z0-9_]*$ && -f "bench/$name.py" ]] || { echo "ERROR: no bench named '$name'; $(usage)" >&2; exit 2; }
scripts/bootstrap.sh train
# -P (safe path): the modules come from this checkout through PYTHONPATH (bench/ is not in the
# installed package), never implicitly from the working directory.
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" exec .venv/bin/python -P -m "bench.$name" "$@"
