#!/usr/bin/env bash
# Import benchmarks (issue 3), not part of CI. Prints a report for BENCHMARKS.md.
#   1. throughput: N comment creates at concurrency 16 against the sandbox with its limiter off,
#      and client CPU per request compared with `xargs -P 16 curl` doing the same posts;
#   2. governed: a 600-operation job at the real default (burst 120, 60/min) against the sandbox
#      enforcing the same limit: elapsed vs the ideal (120 at once, then 1 per second), 429s;
#   3. memory: uploading a 1 GiB file, maximum resident set size of the client.
# Usage: scripts/bench-import.sh [throughput|governed|memory|all]   (N=20000 by default;
# CONCURRENCY=16 by default for `throughput`, `auto` to let the client find it)
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
N="${N:-20000}"
CURL_N="${CURL_N:-2000}"
CONCURRENCY="${CONCURRENCY:-16}"
cargo build --release --quiet
BIN="$PWD/target/release/alga-batch"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
export ALGA_API_KEY=sandbox-key

start_sandbox() { # port, extra flags...
  local port="$1"; shift
  "$BIN" sandbox --listen "127.0.0.1:$port" --quiet "$@" &
  SANDBOX_PID=$!
  for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/api/health" >/dev/null && return; sleep 0.1; done
  echo "sandbox did not start" >&2; exit 1
}

cpu_of() { # /usr/bin/time -v output file -> user+sys seconds
  awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {printf "%.2f", u+s}' "$1"
}

throughput() {
  start_sandbox 18181 --rate-limit off --tickets 25
  export ALGA_BASE_URL=http://127.0.0.1:18181
  local ids
  ids=$(curl -s -H "x-api-key: sandbox-key" "$ALGA_BASE_URL/api/v1/tickets?limit=25&fields=ticket_id,ticket_number" \
    | python3 -c 'import json,sys; print(" ".join(t["ticket_id"] for t in json.load(sys.stdin)["data"]))')
  python3 - "$N" $ids > "$WORK/job.csv" <<'PY'
import sys
n, ids = int(sys.argv[1]), sys.argv[2:]
print("ticket,comment_text")
for i in range(n):
    print(f"{ids[i % len(ids)]},benchmark comment {i}")
PY
  /usr/bin/time -v "$BIN" run "$WORK/job.csv" --results "$WORK/r.csv" --rate-per-minute 0 --concurrency "$CONCURRENCY" --quiet \
    2> "$WORK/ours.txt" || { cat "$WORK/ours.txt"; exit 1; }
  local created; created=$(grep -c ',created,' "$WORK/r.csv" || true)
  [ "$created" = "$N" ] || { echo "only $created of $N created" >&2; exit 1; }
  local elapsed ours_cpu
  elapsed=$(grep -oP '[0-9.]+(?=s elapsed)' "$WORK/ours.txt")
  ours_cpu=$(cpu_of "$WORK/ours.txt")
  local first; first=${ids%% *}
  seq "$CURL_N" | /usr/bin/time -v xargs -P 16 -I{} curl -s -o /dev/null -X POST \
    "$ALGA_BASE_URL/api/v1/tickets/$first/comments" -H "Content-Type: application/json" \
    -H "X-API-Key: sandbox-key" -d '{"comment_text":"curl comment {}","is_internal":false}' 2> "$WORK/curl.txt"
  local curl_cpu; curl_cpu=$(cpu_of "$WORK/curl.txt")
  python3 - "$N" "$elapsed" "$ours_cpu" "$CURL_N" "$curl_cpu" "$CONCURRENCY" <<'PY'
import sys
n, el, oc, cn, cc, conc = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
ours, curl = oc / n * 1e6, cc / cn * 1e6
print(f"throughput: {n} comment creates in {el:.2f} s = {n/el:,.0f} creates/s at concurrency {conc} (limiter off)")
print(f"client cpu: alga-batch {ours:.0f} us/request ({oc:.2f} s for {n}); xargs -P 16 curl {curl:.0f} us/request ({cc:.2f} s for {cn}); ratio curl/alga-batch = {curl/ours:.1f}x")
PY
  kill "$SANDBOX_PID"; wait "$SANDBOX_PID" 2>/dev/null || true
}

governed() {
  start_sandbox 18182 --rate-limit enforce --tickets 25
  export ALGA_BASE_URL=http://127.0.0.1:18182
  python3 - > "$WORK/job600.csv" <<'PY'
print("ticket,comment_text")
for i in range(600):
    print(f"TIC0010{i % 25:02d},governed comment {i}")
PY
  "$BIN" run "$WORK/job600.csv" --results "$WORK/r600.csv" --quiet 2> "$WORK/gov.txt" || true
  cat "$WORK/gov.txt"
  python3 - "$WORK/gov.txt" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
req = int(re.search(r"(\d+) requests sent", t).group(1))
el = float(re.search(r"([0-9.]+)s elapsed", t).group(1))
t429 = int(re.search(r"(\d+) 429s received", t).group(1))
ideal = max(0, req - 120) * 1.0
print(f"governed: {req} requests in {el:.1f} s; ideal {ideal:.0f} s (120 at once, then 1/s); ratio {el/ideal:.3f}; 429s received: {t429}")
PY
  kill "$SANDBOX_PID"; wait "$SANDBOX_PID" 2>/dev/null || true
}

memory() {
  mkdir -p "$WORK/data" "$WORK/big"
  start_sandbox 18183 --rate-limit off --max-upload-mb 2048 --data "$WORK/data"
  export ALGA_BASE_URL=http://127.0.0.1:18183
  head -c $((1024*1024*1024)) /dev/urandom > "$WORK/big/one-gib.bin"
  printf 'ticket,attachments\nTIC001000,big/one-gib.bin\n' > "$WORK/big.csv"
  /usr/bin/time -v "$BIN" run "$WORK/big.csv" --results "$WORK/rbig.csv" --quiet --max-upload-mb 2048 2> "$WORK/mem.txt" \
    || { cat "$WORK/mem.txt"; exit 1; }
  local rss el
  rss=$(awk -F': ' '/Maximum resident/ {print $2}' "$WORK/mem.txt")
  el=$(grep -oP '[0-9.]+(?=s elapsed)' "$WORK/mem.txt")
  echo "memory: 1 GiB upload in ${el} s, client max RSS $((rss / 1024)) MiB"
  kill "$SANDBOX_PID"; wait "$SANDBOX_PID" 2>/dev/null || true
}

case "$what" in
  throughput) throughput ;;
  governed) governed ;;
  memory) memory ;;
  all) throughput; memory; governed ;;
  *) echo "usage: $0 [throughput|governed|memory|all]" >&2; exit 2 ;;
esac
