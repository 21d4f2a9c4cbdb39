#!/usr/bin/env bash
# The spec on the GPU in-process (the baseline) against --backend openai through `transformers serve` on the
# same GPU, on a random-weight model of shisa's shape (its speed equals the real one's), cold and warm.
#   bench/gpu_served.sh [MODEL_DIR] [SAMPLES] [CONCURRENCY]
# Builds MODEL_DIR with bench/bench_engine.py --build when it is missing. Needs transformers[serving]
# (fastapi, uvicorn, openai, ...) installed. Logs go to $OUT (or /tmp).
set -u
model=${1:-/tmp/shisa-random-7b}
samples=${2:-1}
conc=${3:-16}
out=${OUT:-/tmp}
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 NO_PROXY=127.0.0.1 no_proxy=127.0.0.1
[ -f "$model/config.json" ] || python3 bench/bench_engine.py --model "$model" --build || exit 1
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
t0=$EPOCHREALTIME
python3 -m transformers.cli.transformers serve "$model" --host 127.0.0.1 --port "$port" --device cuda --dtype bfloat16 > "$out/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null' EXIT
up=""
for _ in $(seq 600); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=2)" 2>/dev/null; then
    up=$(awk "BEGIN{printf \"%.1f\", $EPOCHREALTIME - $t0}"); break
  fi
  kill -0 $server 2>/dev/null || { echo "transformers serve exited:"; tail -20 "$out/serve.log"; exit 1; }
  sleep 0.5
done
[ -n "$up" ] || { echo "transformers serve did not answer"; tail -20 "$out/serve.log"; exit 1; }
echo "transformers serve answered after $up s (not counted)"
spec() {  # label cache-dir args...
  local label=$1 dir=$2; shift 2
  local t0=$EPOCHREALTIME
  timeout 540 python3 -m pytest -m gpu -q -p no:cacheprovider --model "$model" --samples "$samples" --cache-dir "$dir" "$@" > "$out/pytest-$label.log" 2>&1
  local rc=$?
  local took; took=$(awk "BEGIN{printf \"%.1f\", $EPOCHREALTIME - $t0}")
  echo "$label: $took s wall, exit $rc; $(grep -E '^shisa-spec:|[0-9]+ (passed|failed)' "$out/pytest-$label.log" | tr '\n' ' ')"
}
base=$(mktemp -d); served=$(mktemp -d)
spec in-process-cold "$base"
spec in-process-warm "$base"
spec served-cold "$served" --backend openai --base-url "http://127.0.0.1:$port/v1" --concurrency "$conc"
spec served-warm "$served" --backend openai --base-url "http://127.0.0.1:$port/v1" --concurrency "$conc"
