#!/usr/bin/env bash
# The main job. No arguments: the bundled demo (demo data, the committed demo model as FP32 and
# INT8, LoadGen accuracy + short NON-OFFICIAL performance runs, summary table). With --model and
# --dataset: a real run with official settings. With --submission: a whole submission for one
# system, packaged and checked. `./run_offline.sh --help` lists every flag.
# It installs into .venv on first use, then hands its flags to `mlperf-cpu pipeline`.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
# -P (safe path): the modules come from this checkout through PYTHONPATH, never implicitly from the working directory.
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" exec .venv/bin/python -P -m cli pipeline "$@"
