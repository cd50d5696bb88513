#!/usr/bin/env bash
# Shared recipe script, Kaldi/ESPnet style: stages you can restart from. All logic is in speechft.
#   recipes/run.sh DOMAIN [--stage N] [--stop-stage N] [key=value ...]
#   stage 1: prepare   build the audio + manifests the recipe's data.prepare lists (idempotent)
#   stage 2: run       baseline -> freeze -> train -> evaluate -> report (runs/DOMAIN/latest)
#   stage 3: export    CTranslate2 int8 export of the adapted model, with a WER parity check
set -euo pipefail
cd "$(dirname "$0")/.."
domain=${1:?usage: recipes/run.sh DOMAIN [--stage N] [--stop-stage N] [key=value ...]}
shift
stage=1
stop_stage=3
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    *) break ;;
  esac
done
speechft=${SPEECHFT:-.venv/bin/speechft}
[ -x "$speechft" ] || speechft=speechft
recipe=recipes/$domain/recipe.yaml
run_dir=runs/$domain/latest

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  echo "== stage 1: prepare"
  "$speechft" prepare "$recipe"
fi
if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  echo "== stage 2: run"
  "$speechft" run "$recipe" "$@"
fi
if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  echo "== stage 3: export"
  "$speechft" export --model "$run_dir/model" --out "$run_dir/model-ct2" --manifest "data/$domain/test.jsonl"
fi
