#!/usr/bin/env bash
# Adaptive pacing benchmarks (issue 11), not part of CI. Prints the tables for BENCHMARKS.md.
#   capacity: unknown capacity, concurrency not given. For N=8 workers at 20 ms and N=32 at
#             100 ms (sandbox --capacity N --service-ms S, limiter off, comments not limited):
#             a sweep of fixed --concurrency beside `auto` (run AUTO_RUNS times): comments/s over
#             the whole run and the server's median time in server for comment posts.
#   overrate: client --rate-per-minute 6000 --burst 1000 against a sandbox at burst 20 and
#             600/min with comments limited: 429s, wall time vs the bucket's ideal, exit code,
#             every operation exactly once (results file and the sandbox's POST count).
#   equal:    client and sandbox at the same rate: EQUAL_BURST / EQUAL_PER_MINUTE (default 50 and
#             1200/min, i.e. 20/s, so that it stays short) with EQUAL_OPS operations; then the real
#             default (120, 60/min) with DEFAULT_OPS operations.
#   plain:    limiter off, no capacity limit: scripts/bench-import.sh throughput at the old fixed
#             --concurrency 16 and at auto.
# Usage: scripts/bench-pacing.sh [capacity|overrate|equal|plain|all]
# Knobs (environment): CASES (which of "8 32"), SWEEP_8, SWEEP_32 (fixed concurrencies), COMMENTS_8, COMMENTS_32,
# TICKETS, AUTO_RUNS, OVER_OPS, EQUAL_OPS, EQUAL_BURST, EQUAL_PER_MINUTE, DEFAULT_OPS.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
SWEEP_8="${SWEEP_8:-4 6 7 8 9 10 16 32 64 128}"
SWEEP_32="${SWEEP_32:-4 8 16 30 32 34 64 128}"
COMMENTS_8="${COMMENTS_8:-4000}"
COMMENTS_32="${COMMENTS_32:-3000}"
TICKETS="${TICKETS:-250}"
CASES="${CASES:-8 32}"
AUTO_RUNS="${AUTO_RUNS:-3}"
OVER_OPS="${OVER_OPS:-600}"
EQUAL_OPS="${EQUAL_OPS:-600}"
EQUAL_BURST="${EQUAL_BURST:-50}"
EQUAL_PER_MINUTE="${EQUAL_PER_MINUTE:-1200}"
DEFAULT_OPS="${DEFAULT_OPS:-200}"
cargo build --release --quiet
BIN="$PWD/target/release/alga-batch"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
export ALGA_API_KEY=sandbox-key

# Starts a quiet sandbox on a free loopback port (extra flags as arguments); sets
# ALGA_BASE_URL and SANDBOX_PID; its counters go to $WORK/stats.json when it stops.
start_sandbox() {
  rm -f "$WORK/stats.json" "$WORK/sandbox.err"
  "$BIN" sandbox --listen 127.0.0.1:0 --quiet --stats-file "$WORK/stats.json" "$@" \
    2> "$WORK/sandbox.err" &
  SANDBOX_PID=$!
  for _ in $(seq 100); do
    local url
    url=$(grep -oP 'listening on \Khttp://\S+' "$WORK/sandbox.err" 2>/dev/null || true)
    if [ -n "$url" ]; then export ALGA_BASE_URL="$url"; return; fi
    sleep 0.1
  done
  echo "sandbox did not start: $(cat "$WORK/sandbox.err")" >&2; exit 1
}

# Stops the sandbox (SIGTERM), which writes $WORK/stats.json.
stop_sandbox() {
  kill "$SANDBOX_PID"
  wait "$SANDBOX_PID" 2>/dev/null || true
  [ -s "$WORK/stats.json" ] || { echo "sandbox wrote no stats" >&2; exit 1; }
}

# A CSV job: $1 comments over $2 tickets (TIC001000...), round robin.
comments_job() {
  python3 - "$1" "$2" <<'PY'
import sys
n, t = int(sys.argv[1]), int(sys.argv[2])
print("ticket,comment_text")
for i in range(n):
    print(f"TIC{1000 + i % t:06d},comment {i}")
PY
}

# A CSV job of $1 operations over 25 tickets: every third row uploads a small file beside its
# comment (two operations), the others post a comment only.
mixed_job() {
  mkdir -p "$WORK/files"
  python3 - "$1" "$WORK/files" <<'PY'
import sys
n, folder = int(sys.argv[1]), sys.argv[2]
print("ticket,comment_text,attachments")
ops, i = 0, 0
while ops < n:
    ticket = f"TIC{1000 + i % 25:06d}"
    if i % 3 == 2 and ops + 2 <= n:
        name = f"files/note-{i}.txt"
        with open(f"{folder}/note-{i}.txt", "w") as f:
            f.write(f"attachment {i}\n" * 20)
        print(f"{ticket},comment {i},{name}")
        ops += 2
    else:
        print(f"{ticket},comment {i},")
        ops += 1
    i += 1
PY
}

# Parses a run's summary and the sandbox's stats; prints one JSON object.
measure() { # summary-file stats-file results-file exit-code
  python3 - "$@" <<'PY'
import csv, json, re, sys
summary, stats, results, code = open(sys.argv[1]).read(), json.load(open(sys.argv[2])), sys.argv[3], int(sys.argv[4])
def num(pattern, default=None):
    m = re.search(pattern, summary)
    return float(m.group(1)) if m else default
rows = {}
try:
    for r in csv.DictReader(open(results)):
        rows[r["op_key"]] = r["status"]
except FileNotFoundError:
    pass
posts = sum(v for k, v in stats["by_route"].items() if k.startswith("POST "))
comment_route = "POST /api/v1/tickets/{id}/comments"
lat = stats["route_latency"].get(comment_route, stats["latency"])
limit = re.search(r"comment posts (\d+)(?: \(highest (\d+)\))?", summary)
print(json.dumps({
    "code": code,
    "elapsed": num(r"([0-9.]+)s elapsed"),
    "requests": num(r"(\d+) requests sent"),
    "throttled": num(r"(\d+) 429s received"),
    "created": sum(1 for s in rows.values() if s == "created"),
    "ops": len(rows),
    "posts": posts,
    "server_total": stats["total"],
    "server_429": stats["rate_limited"],
    "post_429": stats["rate_limited_by_method"].get("POST", 0),
    "health": stats["by_route"].get("GET /api/health", 0),
    "p50_ms": lat["p50_ms"],
    "p90_ms": lat["p90_ms"],
    "limit": int(limit.group(1)) if limit else None,
    "highest": int(limit.group(2)) if limit and limit.group(2) else None,
    "learned": num(r"server allows ~([0-9.]+)/s"),
}))
PY
}

# One run of `alga-batch run` against the sandbox already started (flags as arguments), which
# it then stops; the measures go to $WORK/m.json (not a subshell: the sandbox is our child).
run_job() { # job-file flags...
  local job="$1"; shift
  rm -f "$WORK/r.csv"
  local code=0
  "$BIN" run "$job" --results "$WORK/r.csv" --quiet "$@" > "$WORK/summary.txt" 2>&1 || code=$?
  stop_sandbox
  measure "$WORK/summary.txt" "$WORK/stats.json" "$WORK/r.csv" "$code" > "$WORK/m.json"
}

capacity_case() { # workers service-ms comments sweep...
  local n="$1" s="$2" comments="$3"; shift 3
  comments_job "$comments" "$TICKETS" > "$WORK/job.csv"
  local rows="$WORK/rows-$n.jsonl"; : > "$rows"
  for c in "$@" $(for _ in $(seq "$AUTO_RUNS"); do echo auto; done); do
    start_sandbox --capacity "$n" --service-ms "$s" --rate-limit off --tickets "$TICKETS"
    run_job "$WORK/job.csv" --rate-per-minute 0 --concurrency "$c"
    local m; m=$(cat "$WORK/m.json")
    echo "{\"c\": \"$c\", \"m\": $m}" >> "$rows"
    echo "  N=$n S=${s}ms concurrency $c: $m" >&2
  done
  python3 - "$rows" "$n" "$s" "$comments" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
n, s, comments = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
def tput(m): return m["created"] / m["elapsed"]
fixed = [r for r in rows if r["c"] != "auto"]
best = max(fixed, key=lambda r: tput(r["m"]))
print(f"\nN={n} workers, {s:.0f} ms service ({comments} comments over the run; ideal N/S = {n / s * 1000:.0f}/s)\n")
print("| --concurrency | comments/s | vs best fixed | median time in server | vs S | comment limit at the end (highest) |")
print("| --- | --- | --- | --- | --- | --- |")
for r in rows:
    m = r["m"]
    ok = "" if m["code"] == 0 and m["created"] == comments else f" (exit {m['code']}, {m['created']} created)"
    lim = "" if m["limit"] is None else f"{m['limit']}" + ("" if m["highest"] is None else f" ({m['highest']})")
    print(f"| {r['c']} | {tput(m):.0f}{ok} | {tput(m) / tput(best['m']):.2f} | {m['p50_ms']:.1f} ms | {m['p50_ms'] / s:.2f} | {lim} |")
autos = [r["m"] for r in rows if r["c"] == "auto"]
if autos:
    shares = sorted(tput(m) / tput(best["m"]) for m in autos)
    lat = sorted(m["p50_ms"] / s for m in autos)
    print(f"\nbest fixed: --concurrency {best['c']} at {tput(best['m']):.0f}/s; auto: "
          f"{min(shares):.2f}-{max(shares):.2f} of it (target >= 0.9), median latency "
          f"{min(lat):.2f}-{max(lat):.2f} x S (target <= 2)")
PY
}

capacity() {
  case " $CASES " in *" 8 "*) capacity_case 8 20 "$COMMENTS_8" $SWEEP_8 ;; esac
  case " $CASES " in *" 32 "*) capacity_case 32 100 "$COMMENTS_32" $SWEEP_32 ;; esac
}

# Checks and prints one governed run: the requests that paid a token vs the bucket's ideal.
# Basis `server`: the sandbox's bucket counts every request but the health check (comments
# limited); `client`: the client's own governor pays for every request it sends (the server does
# not limit comments, so the configured rate is what paces them).
governed_report() { # label burst per-minute ops basis json
  python3 - "$@" <<'PY'
import json, sys
label, burst, per_min, ops, basis, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], json.loads(sys.argv[6])
counted = m["server_total"] - m["health"] if basis == "server" else int(m["requests"])
admitted = counted - m["server_429"]
ideal = max(0, admitted - burst) / (per_min / 60)
share429 = m["server_429"] / counted
once = m["created"] == ops and m["ops"] == ops and m["posts"] - m["post_429"] == ops
print(f"{label}: exit {m['code']}; {m['created']}/{ops} created; POSTs {m['posts']:.0f} - their 429s "
      f"{m['post_429']} = {m['posts'] - m['post_429']:.0f} (operations {ops}: "
      f"{'exactly once' if once else 'MISMATCH'}); {m['server_429']} 429s of {counted} requests "
      f"= {share429 * 100:.1f} %; {m['elapsed']:.1f} s vs ideal {ideal:.1f} s "
      f"({admitted} admitted - burst {burst}) / {per_min / 60:g}/s = {m['elapsed'] / ideal:.3f}x; "
      f"learned {m['learned']}/s")
PY
}

overrate() {
  mixed_job "$OVER_OPS" > "$WORK/mixed.csv"
  start_sandbox --burst 20 --refill-per-minute 600 --limit-comments
  run_job "$WORK/mixed.csv" --rate-per-minute 6000 --burst 1000
  local m; m=$(cat "$WORK/m.json")
  governed_report "rate 10x above the server's (sandbox 20 / 600 per min, client 1000 / 6000 per min)" \
    20 600 "$OVER_OPS" server "$m"
}

equal() {
  mixed_job "$EQUAL_OPS" > "$WORK/mixed.csv"
  start_sandbox --burst "$EQUAL_BURST" --refill-per-minute "$EQUAL_PER_MINUTE"
  run_job "$WORK/mixed.csv" --rate-per-minute "$EQUAL_PER_MINUTE" --burst "$EQUAL_BURST"
  local m; m=$(cat "$WORK/m.json")
  governed_report "rate equal (both $EQUAL_BURST / $EQUAL_PER_MINUTE per min, comments not limited)" \
    "$EQUAL_BURST" "$EQUAL_PER_MINUTE" "$EQUAL_OPS" client "$m"
  mixed_job "$DEFAULT_OPS" > "$WORK/mixed.csv"
  start_sandbox
  run_job "$WORK/mixed.csv"
  m=$(cat "$WORK/m.json")
  governed_report "rate equal (real defaults 120 / 60 per min, comments not limited)" \
    120 60 "$DEFAULT_OPS" client "$m"
}

plain() {
  CONCURRENCY=16 scripts/bench-import.sh throughput
  CONCURRENCY=auto scripts/bench-import.sh throughput
}

case "$what" in
  capacity) capacity ;;
  overrate) overrate ;;
  equal) equal ;;
  plain) plain ;;
  all) capacity; overrate; equal; plain ;;
  *) echo "usage: $0 [capacity|overrate|equal|plain|all]" >&2; exit 2 ;;
esac
