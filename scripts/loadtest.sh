#!/usr/bin/env bash
# Load test of `embedkit serve` with wrk (Debian package `wrk`): 64 connections for
# DURATION seconds (default 60), one corpus paragraph per request, against the library's
# batch throughput on the same paragraphs, model and threads. Writes the figures to
# target/loadtest.md (the README's BENCHMARKS.md section is copied from it).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-60}
MODEL_DIR=${MODEL_DIR:-${EMBEDKIT_HOME:-$HOME/.cache/embedkit}/models/all-MiniLM-L6-v2-int8}
THREADS=${THREADS:-2}
PORT=${PORT:-18080}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
cargo build --release -q -p embedkit-cli
BIN=./target/release/embedkit
CORPUS=tests/data/corpus.txt
DOCS=$(wc -l < "$CORPUS")

# Library throughput: the whole corpus through `embedkit embed`, best of 3.
lib_best=0
for _ in 1 2 3; do
  start=$(date +%s.%N)
  "$BIN" embed --model sentence-transformers/all-MiniLM-L6-v2 --model-path "$MODEL_DIR" \
    --threads "$THREADS" --input "$CORPUS" --output /tmp/embedkit-loadtest.jsonl
  end=$(date +%s.%N)
  rate=$(python3 -c "print($DOCS / ($end - $start))")
  lib_best=$(python3 -c "print(max($lib_best, $rate))")
done

"$BIN" serve --model sentence-transformers/all-MiniLM-L6-v2 --model-path "$MODEL_DIR" \
  --threads "$THREADS" --port "$PORT" --queue-size 1024 2>/tmp/embedkit-serve.log &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "localhost:$PORT/health" >/dev/null && break; sleep 0.2; done
wrk -t1 -c64 -d"${DURATION}s" --timeout 30s -s scripts/loadtest.lua "http://127.0.0.1:$PORT" -- "$CORPUS" \
  | tee /tmp/embedkit-wrk.txt
result=$(grep '^RESULT' /tmp/embedkit-wrk.txt)
python3 - "$result" "$lib_best" "$DURATION" <<'PY'
import sys, platform, datetime, os
fields = dict(kv.split("=") for kv in sys.argv[1].split()[1:])
lib = float(sys.argv[2])
reqs = int(fields["requests"]); secs = int(fields["duration_us"]) / 1e6
rate = reqs / secs
text = f"""| measure | value |
|---|---|
| server throughput (64 connections, 1 paragraph per request, {sys.argv[3]} s) | {rate:.1f} docs/s |
| library batch throughput (`embedkit embed`, same paragraphs) | {lib:.1f} docs/s |
| server / library | {rate / lib:.2f} |
| latency p50 / p90 / p99 | {float(fields['p50_ms']):.1f} / {float(fields['p90_ms']):.1f} / {float(fields['p99_ms']):.1f} ms |
| requests / non-2xx answers | {reqs} / {fields['errors_status']} |

Measured {datetime.date.today()} on {platform.machine()} with {os.cpu_count()} cores, all-MiniLM-L6-v2 int8,
2 ONNX Runtime threads; wrk (1 thread) runs on the same machine and takes part of the CPU.
"""
open("target/loadtest.md", "w").write(text)
print(text)
PY
