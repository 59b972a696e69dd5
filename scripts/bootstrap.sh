#!/usr/bin/env bash
# Create .venv and install the project (editable) with the given extras, at the versions in
# constraints.txt, once per version of pyproject.toml + setup.py + constraints.txt and of the set
# of top-level packages (an editable install maps the packages that existed when it was made).
# Usage: scripts/bootstrap.sh [extras]   (e.g. "test")
# Any failed step stops the script with pip's own error and a non-zero exit; the stamp is
# written only after the install and an import check succeed.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
spec="."
[ -n "$extras" ] && spec=".[${extras}]"
version="$( { cat pyproject.toml setup.py constraints.txt; ls -d */__init__.py; } | sha256sum | cut -c1-16)"
stamp=".venv/.installed-${version}-${extras:-runtime}"
if [ ! -f "$stamp" ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  echo "[ bootstrap ] installing $spec into .venv with constraints.txt (once per version)" >&2
  if ! .venv/bin/python -m pip install -q --upgrade pip \
     || ! .venv/bin/python -m pip install -q -c constraints.txt -e "$spec"; then
    echo "ERROR: scripts/bootstrap.sh: pip could not install $spec into .venv (its error is above)" >&2
    exit 1
  fi
  .venv/bin/python -c "import cli, sut, dataset, mlperf_loadgen, openvino, nncf, cv2, yaml, scipy" \
    || { echo "ERROR: scripts/bootstrap.sh: $spec installed but does not import (see above)" >&2; exit 1; }
  touch "$stamp"
fi
