#!/usr/bin/env bash
# Validation of a large CSV job (issue 14): ROWS rows (default 1,000,000) of comments spread
# over 1,000 tickets, validated by a release build; prints wall time and max RSS
# (/usr/bin/time -v). Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${ROWS:-1000000}"
cargo build --release --quiet
dir="$(mktemp -d)"
trap 'rm -rf "$dir"' EXIT
awk -v n="$ROWS" 'BEGIN {
  print "ticket,comment_text,is_internal,is_resolution,attachments"
  for (i = 0; i < n; i++)
    printf "TIC%06d,\"Imported note %d: the customer called about the printer, again.\",%s,no,\n", 1000 + i % 1000, i, (i % 3 ? "false" : "yes")
}' > "$dir/big.csv"
echo "job: $ROWS rows, $(du -h "$dir/big.csv" | cut -f1)"
/usr/bin/time -v target/release/alga-batch validate "$dir/big.csv" 2> "$dir/time.txt" || true
grep -E "alga-batch|Elapsed|Maximum resident" "$dir/time.txt" || cat "$dir/time.txt"
tail -n 3 "$dir/time.txt" | grep -v "^\s" || true
grep -E "operations|error" "$dir/time.txt" | head -5 || true
