#!/usr/bin/env bash
# Validation of large CSV jobs (issue 14): for each size in ROWS (default 1,000,000), a job of
# comments spread over 1,000 tickets is validated by a release build; prints wall time and max
# RSS (/usr/bin/time -v) per size. Not part of CI.
#
#   ROWS="100000 1000000 5000000" scripts/bench-validate.sh
#   KIND=plain   every row distinct (default): the duplicate detector keeps a digest per row
#   KIND=dup     1,000 distinct rows repeated: every later row is a duplicate warning, so the
#                digest table stays small and the problem list is at its bound (flat memory)
#   KIND=bad     every row has a bad boolean: one error per row, 100 listed and a count
#   RUN=1        also `run --dry-run` against a local sandbox (1,000 tickets, limiter off);
#                it plans every row and writes the plan to a results file
#   BIN=path     measure another build (e.g. an older one) instead of target/release
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${ROWS:-1000000}"
KIND="${KIND:-plain}"
if [[ -z "${BIN:-}" ]]; then
  cargo build --release --quiet
  BIN="$PWD/target/release/alga-batch"
fi
dir="$(mktemp -d)"
sandbox_pid=""
cleanup() {
  if [[ -n "$sandbox_pid" ]]; then kill "$sandbox_pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT

generate() { # rows file
  awk -v n="$1" -v kind="$KIND" 'BEGIN {
    print "ticket,comment_text,is_internal,is_resolution,attachments"
    for (i = 0; i < n; i++) {
      note = (kind == "dup") ? i % 1000 : i
      flag = (kind == "bad") ? "maybe" : (i % 3 ? "false" : "yes")
      printf "TIC%06d,\"Imported note %d: the customer called about the printer, again.\",%s,no,\n", 1000 + i % 1000, note, flag
    }
  }' > "$2"
}

# measure LABEL CMD...: one line with wall time and max RSS; the command's last line below it.
measure() {
  local label="$1"; shift
  /usr/bin/time -v "$@" > "$dir/out.txt" 2> "$dir/time.txt" || true
  local wall rss
  wall="$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$dir/time.txt")"
  rss="$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$dir/time.txt")"
  printf '%-22s wall %8s   max RSS %6d MiB\n' "$label" "$wall" "$((rss / 1024))"
  grep -vE "^\s|Command exited|^$" "$dir/time.txt" | tail -n 1 | sed 's/^/    /' || true
}

if [[ "${RUN:-}" == 1 ]]; then
  port=$((20000 + RANDOM % 20000))
  "$BIN" sandbox --listen "127.0.0.1:$port" --tickets 1000 --rate-limit off > "$dir/sandbox.log" 2>&1 &
  sandbox_pid=$!
  for _ in $(seq 50); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/"; then break; fi
    sleep 0.2
  done
  export ALGA_BASE_URL="http://127.0.0.1:$port" ALGA_API_KEY=sandbox-key
fi

echo "binary: $BIN, kind: $KIND"
for n in $ROWS; do
  generate "$n" "$dir/big.csv"
  echo "job: $n rows, $(du -h "$dir/big.csv" | cut -f1)"
  measure "validate $n" "$BIN" validate "$dir/big.csv"
  if [[ "${RUN:-}" == 1 ]]; then
    rm -f "$dir/r.csv"
    measure "run --dry-run $n" "$BIN" run "$dir/big.csv" --dry-run --quiet --results "$dir/r.csv"
  fi
  rm -f "$dir/big.csv" "$dir/r.csv"
done
