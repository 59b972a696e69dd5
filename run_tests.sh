#!/usr/bin/env bash
# The test command: installs into .venv on first use, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh test
# -P (safe path): the modules come from this checkout through PYTHONPATH, never implicitly from the working directory.
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" exec .venv/bin/python -P -m pytest -q "$@"
