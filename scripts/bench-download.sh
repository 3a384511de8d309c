#!/usr/bin/env bash
# Benchmark (not run in CI): download a 1 GiB document from the sandbox side by side with
# `curl -o`, `curl -o` followed by an fsync of the file (for reference), `alga-batch backup`
# (which also computes sha256 while streaming, checks the size and renames into place; whole
# blocks go to disk with direct I/O where the filesystem allows) and, for reference,
# `alga-batch backup --no-direct-io` (every write through the page cache). Several rounds,
# `sync` and a 2 s pause before each, tools in turn; report wall time, throughput, CPU and max
# RSS (/usr/bin/time -v), then the median of each tool. Then check that a repeat backup of
# 1,000 unchanged documents sends no download request.
#
# Usage: scripts/bench-download.sh [ROUNDS]      (default 3; needs curl, jq, /usr/bin/time)
# SIZE_MIB=1024 and DOCS=1000 can be changed through the environment.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SIZE_MIB=${SIZE_MIB:-1024}
DOCS=${DOCS:-1000}
KEY=bench-key
BIN=$PWD/target/release/alga-batch

cargo build --release --quiet 2>/dev/null
WORK=$(mktemp -d /tmp/alga-bench.XXXXXX)
SANDBOX_PID=
cleanup() {
    if [ -n "$SANDBOX_PID" ]; then kill "$SANDBOX_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" sandbox --listen 127.0.0.1:0 --tickets 2 --rate-limit off --api-key "$KEY" \
    --max-upload-mb $((SIZE_MIB + 1)) --quiet 2>"$WORK/sandbox.log" &
SANDBOX_PID=$!
for _ in $(seq 50); do
    grep -q 'listening on' "$WORK/sandbox.log" 2>/dev/null && break
    sleep 0.1
done
BASE=$(grep -o 'http://[0-9.:]*' "$WORK/sandbox.log" | head -1)
api() { curl -sf -H "x-api-key: $KEY" "$@"; }
ticket_id() {
    api "$BASE/api/v1/tickets?ticket_number=$1&fields=ticket_id,ticket_number" |
        jq -r --arg n "$1" '.data[] | select(.ticket_number == $n) | .ticket_id'
}
BIG_T=$(ticket_id TIC001000)
MANY_T=$(ticket_id TIC001001)

echo "creating and uploading a ${SIZE_MIB} MiB document..."
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$WORK/big.bin"
DOC=$(api -F "file=@$WORK/big.bin;type=application/octet-stream" \
    "$BASE/api/v1/tickets/$BIG_T/documents" | jq -r '.data.document_id')
WANT=$(sha256sum "$WORK/big.bin" | cut -d' ' -f1)
rm "$WORK/big.bin"

# field from `time -v` output
tv() { grep "$1" "$2" | awk -F': ' '{print $2}'; }
secs() { # h:mm:ss or m:ss.cc -> seconds
    awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }' <<<"$1"
}

URL="$BASE/api/v1/tickets/$BIG_T/documents/$DOC"
# curl+fsync: for reference (alga-batch does not fsync each file; `backup --verify` re-reads them).
run_curl() { curl -sf -H "x-api-key: $KEY" -o "$WORK/curl.bin" "$URL"; }
run_curl_fsync() { run_curl && sync "$WORK/curl.bin"; }
run_ab() {
    rm -rf "$WORK/out"
    ALGA_API_KEY=$KEY "$BIN" backup --base-url "$BASE" --out "$WORK/out" --ticket TIC001000 \
        --rate-per-minute 0 --quiet "$@" 2>/dev/null
}
run_ab_buffered() { run_ab --no-direct-io; }
export -f run_curl run_curl_fsync run_ab run_ab_buffered
export WORK KEY URL BIN BASE

printf '%-6s %-12s %10s %12s %10s %12s\n' round tool seconds MiB/s CPU_s maxRSS_MiB
for r in $(seq "$ROUNDS"); do
    for tool in run_curl run_curl_fsync run_ab run_ab_buffered; do
        rm -rf "$WORK/out" "$WORK/curl.bin"
        sync # no unrelated dirty pages in anyone's fsync (ext4 flushes them together)
        # Let freed memory settle the same way before every tool: on a VM whose free pages go
        # back to the host, how cold the next pages are depends on how long ago they were freed.
        sleep 2
        /usr/bin/time -v -o "$WORK/t.time" bash -c "$tool"
        s=$(secs "$(tv 'Elapsed (wall clock)' "$WORK/t.time")")
        cpu=$(awk -v u="$(tv 'User time' "$WORK/t.time")" -v k="$(tv 'System time' "$WORK/t.time")" \
            'BEGIN{print u+k}')
        rss=$(tv 'Maximum resident set size' "$WORK/t.time")
        printf '%-6s %-12s %10.2f %12.0f %10.2f %12.1f\n' "$r" "${tool#run_}" "$s" \
            "$(awk -v s="$s" -v m="$SIZE_MIB" 'BEGIN{print m/s}')" "$cpu" \
            "$(awk -v k="$rss" 'BEGIN{print k/1024}')" | tee -a "$WORK/rows.txt"
        if [ "$tool" != run_curl ] && [ "$tool" != run_curl_fsync ]; then
            GOT=$(awk -F, -v d="$DOC" '$3 == d {print $7}' "$WORK/out/manifest.csv")
            [ "$GOT" = "$WANT" ] || { echo "sha256 mismatch: $GOT vs $WANT" >&2; exit 1; }
        fi
    done
done

echo
echo "medians over $ROUNDS rounds:"
for tool in curl curl_fsync ab ab_buffered; do
    awk -v t="$tool" '$2 == t {print $3}' "$WORK/rows.txt" | sort -n |
        awk -v t="$tool" -v m="$SIZE_MIB" '{v[NR]=$1} END {
            med = (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2
            printf "%-12s %6.2f s %8.0f MiB/s\n", t, med, m/med }' | tee -a "$WORK/medians.txt"
done
awk '$1 == "curl" {c=$4} $1 == "ab" {a=$4} END {
    printf "alga-batch backup / curl throughput: %.0f %%\n", 100*a/c }' "$WORK/medians.txt"

echo
echo "repeat backup of $DOCS unchanged documents..."
for i in $(seq "$DOCS"); do printf 'document %d\n' "$i" >"$WORK/d-$i.txt"; done
for i in $(seq "$DOCS"); do
    api -o /dev/null -F "file=@$WORK/d-$i.txt" "$BASE/api/v1/tickets/$MANY_T/documents"
done
rm -rf "$WORK/many"
ALGA_API_KEY=$KEY "$BIN" backup --base-url "$BASE" --out "$WORK/many" --ticket TIC001001 \
    --rate-per-minute 0 --concurrency 8 --quiet
ALGA_API_KEY=$KEY "$BIN" backup --base-url "$BASE" --out "$WORK/many" --ticket TIC001001 \
    --rate-per-minute 0 --concurrency 8 --quiet 2>&1 | tee "$WORK/repeat.txt"
grep -q "0 downloaded (0 B), $DOCS unchanged" "$WORK/repeat.txt" &&
    echo "repeat backup: no download request for $DOCS unchanged documents"
