#!/usr/bin/env bash
# Benchmark (not run in CI) for issue 13: one 1 GiB document from the sandbox (limiter off)
# backed up to a local folder and to a local S3 server (`examples/s3_server.rs`: s3s-fs over a
# folder on the same disk, started by this script; nothing from the internet), in turn within
# each round, with `sync` and a 2 s pause before each. Reports wall time, throughput, CPU and
# the max RSS of alga-batch (/usr/bin/time -v; the S3 server is a separate process and not
# counted) and the CPU the S3 server used meanwhile (/proc), then the median of each target.
# The sha256 in each manifest and of the object in the server's folder is checked.
#
# Usage: scripts/bench-s3.sh [ROUNDS]      (default 3; needs curl, jq, /usr/bin/time)
# SIZE_MIB=1024 can be changed through the environment. Needs about 4 x SIZE_MIB of free space
# under /tmp (the document, the folder backup, and the server's parts and object).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SIZE_MIB=${SIZE_MIB:-1024}
KEY=bench-key
BIN=$PWD/target/release/alga-batch
S3BIN=$PWD/target/release/examples/s3_server

cargo build --release --quiet 2>/dev/null
cargo build --release --quiet --example s3_server 2>/dev/null
WORK=$(mktemp -d /tmp/alga-bench-s3.XXXXXX)
SANDBOX_PID=
S3_PID=
cleanup() {
    if [ -n "$SANDBOX_PID" ]; then kill "$SANDBOX_PID" 2>/dev/null || true; fi
    if [ -n "$S3_PID" ]; then kill -INT "$S3_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN" sandbox --listen 127.0.0.1:0 --tickets 2 --rate-limit off --api-key "$KEY" \
    --max-upload-mb $((SIZE_MIB + 1)) --quiet 2>"$WORK/sandbox.log" &
SANDBOX_PID=$!
"$S3BIN" "$WORK/s3" backups >"$WORK/s3.env" 2>"$WORK/s3.log" &
S3_PID=$!
for _ in $(seq 100); do
    grep -q 'listening on' "$WORK/sandbox.log" 2>/dev/null &&
        grep -q '^AWS_REGION' "$WORK/s3.env" 2>/dev/null && break
    sleep 0.1
done
BASE=$(grep -o 'http://[0-9.:]*' "$WORK/sandbox.log" | head -1)
while IFS='=' read -r k v; do
    case "$k" in AWS_*) export "$k=$v" ;; esac
done <"$WORK/s3.env"
api() { curl -sf -H "x-api-key: $KEY" "$@"; }
BIG_T=$(api "$BASE/api/v1/tickets?ticket_number=TIC001000&fields=ticket_id,ticket_number" |
    jq -r '.data[] | select(.ticket_number == "TIC001000") | .ticket_id')

echo "creating and uploading a ${SIZE_MIB} MiB document..."
head -c $((SIZE_MIB * 1024 * 1024)) /dev/urandom >"$WORK/big.bin"
DOC=$(api -F "file=@$WORK/big.bin;type=application/octet-stream" \
    "$BASE/api/v1/tickets/$BIG_T/documents" | jq -r '.data.document_id')
WANT=$(sha256sum "$WORK/big.bin" | cut -d' ' -f1)
rm "$WORK/big.bin"

tv() { grep "$1" "$2" | awk -F': ' '{print $2}'; }
secs() { awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }' <<<"$1"; }

run_folder() {
    ALGA_API_KEY=$KEY "$BIN" backup --base-url "$BASE" --out "$WORK/out" --ticket TIC001000 \
        --rate-per-minute 0 --quiet 2>/dev/null
}
run_s3() {
    ALGA_API_KEY=$KEY "$BIN" backup --base-url "$BASE" --out s3://backups/bench \
        --ticket TIC001000 --rate-per-minute 0 --quiet 2>/dev/null
}
export -f run_folder run_s3
export WORK KEY BIN BASE

# CPU seconds (user+sys) the S3 server has used so far.
server_cpu() { awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$S3_PID/stat"; }

printf '%-6s %-8s %10s %12s %10s %12s %14s\n' round target seconds MiB/s CPU_s maxRSS_MiB server_CPU_s
for r in $(seq "$ROUNDS"); do
    for target in folder s3; do
        rm -rf "$WORK/out" "$WORK/s3/backups/bench"
        sync
        sleep 2
        before=$(server_cpu)
        /usr/bin/time -v -o "$WORK/t.time" bash -c "run_$target"
        server=$(awk -v a="$before" -v b="$(server_cpu)" 'BEGIN{print b - a}')
        s=$(secs "$(tv 'Elapsed (wall clock)' "$WORK/t.time")")
        cpu=$(awk -v u="$(tv 'User time' "$WORK/t.time")" -v k="$(tv 'System time' "$WORK/t.time")" \
            'BEGIN{print u+k}')
        rss=$(tv 'Maximum resident set size' "$WORK/t.time")
        printf '%-6s %-8s %10.2f %12.0f %10.2f %12.1f %14.2f\n' "$r" "$target" "$s" \
            "$(awk -v s="$s" -v m="$SIZE_MIB" 'BEGIN{print m/s}')" "$cpu" \
            "$(awk -v k="$rss" 'BEGIN{print k/1024}')" "$server" | tee -a "$WORK/rows.txt"
        if [ "$target" = folder ]; then
            MANIFEST="$WORK/out/manifest.csv"
        else
            MANIFEST="$WORK/s3/backups/bench/manifest.csv"
        fi
        GOT=$(awk -F, -v d="$DOC" '$3 == d {print $7}' "$MANIFEST")
        [ "$GOT" = "$WANT" ] || { echo "sha256 mismatch ($target): $GOT vs $WANT" >&2; exit 1; }
    done
    GOT=$(sha256sum "$WORK/s3/backups/bench/TIC001000/"* | grep -c "$WANT" || true)
    [ "$GOT" = 1 ] || { echo "the object in the S3 server's folder does not hash right" >&2; exit 1; }
done

echo
echo "medians over $ROUNDS rounds:"
for target in folder s3; do
    for col in 3 6; do
        awk -v t="$target" -v c="$col" '$2 == t {print $c}' "$WORK/rows.txt" | sort -n |
            awk '{v[NR]=$1} END { print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2 }'
    done | paste -sd' ' | awk -v t="$target" -v m="$SIZE_MIB" \
        '{printf "%-8s %6.2f s %8.0f MiB/s  max RSS %.1f MiB\n", t, $1, m/$1, $2}'
done

echo
echo "requests the S3 server answered over the $ROUNDS S3 runs:"
kill -INT "$S3_PID"
wait "$S3_PID" || true
S3_PID=
grep -E '^[A-Za-z0-9]+: [0-9]+$' "$WORK/s3.env" | sed 's/^/  /'
