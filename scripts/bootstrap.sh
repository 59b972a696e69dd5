#!/usr/bin/env bash
# Create .venv and install the project with the given extras, once per setup.py version.
# Usage: scripts/bootstrap.sh [extras]   (e.g. "test")
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
spec="."
[ -n "$extras" ] && spec=".[${extras}]"
stamp=".venv/.installed-$(sha256sum setup.py | cut -c1-16)-${extras:-runtime}"
if [ ! -f "$stamp" ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  echo "[ bootstrap ] installing $spec into .venv (first run only)" >&2
  .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" >&2 || true
  .venv/bin/python -m pip install -q -e "$spec" 2>&1 | grep -v "is ignored" >&2 || true
  .venv/bin/python -c "import cli, sut, dataset, mlperf_loadgen, openvino, nncf, cv2, yaml" \
    || { echo "ERROR: installing $spec into .venv failed" >&2; exit 1; }
  touch "$stamp"
fi
