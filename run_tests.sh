#!/usr/bin/env bash
# The test command: installs into .venv on first use, then runs the whole suite on two workers
# (one on a one-CPU host; tests/conftest.py keeps the files that must not overlap on one worker).
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh test
workers=$(( $(nproc) >= 2 ? 2 : 1 ))
# -P (safe path): the modules come from this checkout through PYTHONPATH, never implicitly from the working directory.
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" exec .venv/bin/python -P -m pytest -q -n "$workers" "$@"
