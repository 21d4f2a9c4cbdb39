#!/usr/bin/env bash
# Time a cold `pytest -m gpu --model=DIR` (fresh process, empty generation cache), a fully cached re-run,
# and a second cold run with a fresh generation cache (Triton's kernel cache now warm).
#   bench/cold_pytest.sh MODEL_DIR [extra pytest args...]
# Prints the wall time of each; the weights should already be in the page cache (as after writing them).
set -u
model=$1; shift
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
cache=$(mktemp -d /tmp/shisa-cache.XXXX)
cache2=$(mktemp -d /tmp/shisa-cache.XXXX)
for run in cold cached cold-again; do
  dir=$cache; [ "$run" = cold-again ] && dir=$cache2
  t0=$EPOCHREALTIME
  python3 -m pytest -m gpu -q -p no:cacheprovider --model="$model" --cache-dir="$dir" "$@" > "/tmp/pytest-$run.log" 2>&1
  rc=$?
  t1=$EPOCHREALTIME
  echo "pytest -m gpu ($run): $(awk "BEGIN{printf \"%.1f\", $t1 - $t0}") s wall, exit $rc; $(grep -E '^shisa-spec:|passed|failed' /tmp/pytest-$run.log | tr '\n' ' ')"
done
