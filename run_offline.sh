#!/usr/bin/env bash
# The main job. No arguments: the bundled demo (build demo data, prepare the committed demo
# model as FP32 and INT8, LoadGen accuracy + short performance runs, summary table).
# With arguments: a real Offline run of a user's model on ImageNet with official settings.
set -euo pipefail
cd "$(dirname "$0")"

usage() {
  cat <<'USAGE'
Usage: ./run_offline.sh                      run the bundled demo (a few minutes on 2 cores)
       ./run_offline.sh --model M --dataset D --calib-list L [options]

Real run (official settings: 600 s minimum duration, full accuracy pass):
  --model PATH        resnet50_v1.onnx (or any ONNX/IR classifier; its card is derived)
  --dataset DIR       ImageNet 2012 val directory holding the JPEGs and val_map.txt
  --calib-list FILE   calibration list (MLCommons cal_image_list_option_1.txt)
  --calib-dir DIR     where the calibration images are (default: --dataset)
  --val-map FILE      default: DIR/val_map.txt
  --system NAME       system profile: host (default) or one of configs/*.yaml
  --precision P       int8 (default) or f32
  --mode M            all (default), accuracy or performance
  --user-conf FILE    LoadGen user.conf (default: ./user.conf; set target_qps from a measurement)
  --results DIR       results root (default: ./results)
  -h, --help          this text

Whole submission for one system (accuracy, performance, optional compliance, package, check):
  --submission        run everything with official settings and build an open-division tree
  --org NAME          submitter (default: Demo); the tree's open/<NAME> folder
  --out DIR           submission tree (default: submission)
  --compliance        also run TEST01 and TEST04 (closed division needs them; open does not)
  --tune              measure the engine grid first and set target_qps (writes configs/<system>-tuned.yaml)
  --set KEY=VALUE     a systems/<name>.json field this machine cannot read (system_name, cooling,
                      host_memory_configuration, ...); repeatable
  With --submission and no --model: the demo task at official length (a 50,000-image val set
  rendered from the bundled digits, the committed demo model, a 600 s performance run).
USAGE
}

model="" dataset="" calib_list="" calib_dir="" val_map="" system="host" precision="int8"
mode="all" user_conf="user.conf" results="results"
submission=0 org="Demo" out="submission" compliance=0 tune=0 sets=() tune_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --model) model="$2"; shift 2 ;;
    --dataset) dataset="$2"; shift 2 ;;
    --calib-list) calib_list="$2"; shift 2 ;;
    --calib-dir) calib_dir="$2"; shift 2 ;;
    --val-map) val_map="$2"; shift 2 ;;
    --system) system="$2"; shift 2 ;;
    --precision) precision="$2"; shift 2 ;;
    --mode) mode="$2"; shift 2 ;;
    --user-conf) user_conf="$2"; shift 2 ;;
    --results) results="$2"; shift 2 ;;
    --submission) submission=1; shift ;;
    --org) org="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --compliance) compliance=1; shift ;;
    --tune) tune=1; shift ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "ERROR: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

scripts/bootstrap.sh
py=.venv/bin/python
cli=("$py" -m sut.cli)

prepare() {  # prepare MODEL PRECISION [calib args...] -> prints the prepared model dir
  local src="$1" prec="$2"; shift 2
  "${cli[@]}" prepare --model "$src" --precision "$prec" "$@" | tail -n 1
}

if [ "$submission" = 1 ]; then
  if [ -z "$model$dataset" ]; then
    echo "=== demo submission: demo task at official length (50,000 accuracy samples, 600 s run) ==="
    "$py" -m dataset.demo --out data/demo
    "$py" -m dataset.demo --out data/demo-50k --val-size 50000
    model=models/weights/decinet_demo.onnx dataset=data/demo-50k/val
    calib_list=data/demo/cal_list.txt calib_dir=data/demo/train
    # The demo model is ~70x faster than ResNet-50: tune into its own user.conf, not the project's.
    mkdir -p work && cp user.conf work/demo-submission.user.conf
    user_conf=work/demo-submission.user.conf tune=1 tune_args=(--margin 1.3)
    [ ${#sets[@]} -gt 0 ] || sets=(--set "system_name=$(hostname)-${system}" \
      --set "cooling=N/A (virtual machine; cooling managed by the cloud provider)" \
      --set "host_memory_configuration=undisclosed (virtual machine)")
  fi
  [ -n "$model" ] && [ -n "$dataset" ] && [ -n "$calib_list" ] \
    || { echo "ERROR: --submission needs --model, --dataset and --calib-list (or none of them for the demo)" >&2; exit 2; }
  check=(--check-dataset "$dataset" --check-count 1000)
  [ -n "$val_map" ] && check+=(--check-val-map "$val_map")
  if [ "$precision" = "int8" ]; then
    model_dir=$(prepare "$model" int8 --calib-list "$calib_list" --calib-dir "${calib_dir:-$dataset}" "${check[@]}")
  else
    model_dir=$(prepare "$model" "$precision")
  fi
  if [ "$tune" = 1 ]; then
    "${cli[@]}" tune --model "$model_dir" --system "$system" --user-conf "$user_conf" "${tune_args[@]}"
    system="${system}-tuned"
  fi
  run_args=(--model "$model_dir" --dataset "$dataset" --system "$system" --user-conf "$user_conf" --results "$results")
  [ -n "$val_map" ] && run_args+=(--val-map "$val_map")
  modes=(accuracy performance)
  [ "$compliance" = 1 ] && modes+=(TEST01 TEST04)
  for m in "${modes[@]}"; do "${cli[@]}" run --mode "$m" "${run_args[@]}"; done
  label=$(basename "$model_dir" | sed -E 's/-[0-9a-f]{10}$//')
  "${cli[@]}" package --results "$results" --system "$system" --model "$label" --org "$org" --out "$out" \
    --user-conf "$user_conf" --replace "${sets[@]}"
  "${cli[@]}" check --tree "$out"
  "${cli[@]}" summary --results "$results"
  exit 0
fi

if [ -z "$model$dataset$calib_list" ]; then
  echo "=== bundled demo: digits in ImageNet val layout, committed DeciNet-style demo model ==="
  echo "=== demo performance runs use SHORT, NON-OFFICIAL LoadGen settings: not submittable ==="
  "$py" -m dataset.demo --out data/demo
  src=models/weights/decinet_demo.onnx
  f32_dir=$(prepare "$src" f32)
  int8_dir=$(prepare "$src" int8 --calib-list data/demo/cal_list.txt --calib-dir data/demo/train \
    --check-dataset data/demo/val)
  demo=(--dataset data/demo/val --system "$system" --results "$results")
  for dir in "$f32_dir" "$int8_dir"; do
    "${cli[@]}" run --mode accuracy --model "$dir" "${demo[@]}"
    "${cli[@]}" run --mode performance --model "$dir" "${demo[@]}" \
      --min-duration-ms 10000 --min-query-count 1 --target-qps 0
  done
  "${cli[@]}" summary --results "$results"
  exit 0
fi

[ -n "$model" ] && [ -n "$dataset" ] || { echo "ERROR: a real run needs --model and --dataset (see --help)" >&2; exit 2; }
run_args=(--dataset "$dataset" --system "$system" --user-conf "$user_conf" --results "$results")
[ -n "$val_map" ] && run_args+=(--val-map "$val_map")
if [ "$precision" = "int8" ]; then
  [ -n "$calib_list" ] || { echo "ERROR: --precision int8 needs --calib-list" >&2; exit 2; }
  check=(--check-dataset "$dataset")
  [ -n "$val_map" ] && check+=(--check-val-map "$val_map")
  model_dir=$(prepare "$model" int8 --calib-list "$calib_list" --calib-dir "${calib_dir:-$dataset}" "${check[@]}")
else
  model_dir=$(prepare "$model" "$precision")
fi
case "$mode" in
  all) "${cli[@]}" run --mode accuracy --model "$model_dir" "${run_args[@]}"
       "${cli[@]}" run --mode performance --model "$model_dir" "${run_args[@]}" ;;
  accuracy|performance) "${cli[@]}" run --mode "$mode" --model "$model_dir" "${run_args[@]}" ;;
  *) echo "ERROR: --mode must be all, accuracy or performance, got '$mode'" >&2; exit 2 ;;
esac
"${cli[@]}" summary --results "$results"
