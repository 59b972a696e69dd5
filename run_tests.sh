#!/usr/bin/env bash
# The test command: installs into .venv on first use, then runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh test
exec .venv/bin/python -m pytest -q "$@"
