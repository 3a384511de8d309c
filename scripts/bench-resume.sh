#!/usr/bin/env bash
# Benchmark (not run in CI) for issue 10 §6: the time to resume an import job that has already
# finished. N attachment files of SIZE_KB KiB (distinct random content) are uploaded to the 25
# seeded tickets of a sandbox (limiter off), one upload per CSV row, once per binary and each
# binary with its own results file; every row must end `created`. Then the same `run` on the
# same results file is timed: it must exit 0 and skip all N operations (0 created). Warm-cache
# rounds (binaries in turn), then one cold-cache round per binary when the page cache can be
# dropped (`echo 3 > /proc/sys/vm/drop_caches`, needs root). Reports wall time, user+sys CPU,
# max RSS and, cold, the blocks read from disk (/usr/bin/time %I), as a markdown table.
#
# Builds nothing: it times the binaries it is given.
#   AFTER   binary to measure (default target/release/alga-batch; it also serves the sandbox)
#   BEFORE  optional second binary (an older build) measured the same way, side by side
#   N=10000 SIZE_KB=200 ROUNDS=5 (warm rounds per binary) COLD=1 (0: no cold round)
# Usage: BEFORE=/path/to/old/alga-batch scripts/bench-resume.sh
# Needs about N x SIZE_KB of free space under /tmp (2 GB by default) and twice that in memory
# for the sandbox, which keeps the uploaded documents of both binaries in memory.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-10000}
SIZE_KB=${SIZE_KB:-200}
ROUNDS=${ROUNDS:-5}
COLD=${COLD:-1}
AFTER=$(realpath "${AFTER:-target/release/alga-batch}")
BEFORE=${BEFORE:+$(realpath "$BEFORE")}
for b in "$AFTER" ${BEFORE:+"$BEFORE"}; do
    [ -x "$b" ] || { echo "not an executable: $b (build it first)" >&2; exit 2; }
done
HAVE_TIME=0
[ -x /usr/bin/time ] && HAVE_TIME=1

WORK=$(mktemp -d /tmp/alga-bench-resume.XXXXXX)
SANDBOX_PID=
cleanup() {
    if [ -n "$SANDBOX_PID" ]; then kill "$SANDBOX_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# A free port: let the kernel pick one (port 0) and read it back from the sandbox's first line.
export ALGA_API_KEY=bench-key
"$AFTER" sandbox --listen 127.0.0.1:0 --rate-limit off --quiet --tickets 25 \
    --api-key "$ALGA_API_KEY" 2>"$WORK/sandbox.log" &
SANDBOX_PID=$!
for _ in $(seq 50); do
    grep -q 'listening on' "$WORK/sandbox.log" 2>/dev/null && break
    sleep 0.1
done
ALGA_BASE_URL=$(grep -o 'http://[0-9.:]*' "$WORK/sandbox.log" | head -1)
[ -n "$ALGA_BASE_URL" ] || { echo "sandbox did not start" >&2; cat "$WORK/sandbox.log" >&2; exit 1; }
export ALGA_BASE_URL

# N files of distinct random content: one stream of random bytes cut into SIZE_KB pieces
# (files/f00000.bin, ...), and the job: file i goes to ticket TIC0010xx with xx = i mod 25.
echo "generating $N files of $SIZE_KB KiB in $WORK..." >&2
WIDTH=$(( ${#N} > 5 ? ${#N} : 5 ))
mkdir "$WORK/files"
head -c $((N * SIZE_KB * 1024)) /dev/urandom |
    split -b "${SIZE_KB}K" -d -a "$WIDTH" --additional-suffix=.bin - "$WORK/files/f"
awk -v n="$N" -v w="$WIDTH" 'BEGIN {
    print "ticket,comment_text,attachments"
    for (i = 0; i < n; i++) printf "TIC0010%02d,,files/f%0*d.bin\n", i % 25, w, i
}' >"$WORK/job.csv"
# Files are normally older than the run that uploads them. alga-batch (after issue 10) trusts a
# recorded hash only for a file modified at least 2 s before its row was written, so do not
# upload files written within the last 2 s.
sleep 3

NAMES=(after)
BINS=("$AFTER")
if [ -n "$BEFORE" ]; then NAMES=(before after); BINS=("$BEFORE" "$AFTER"); fi

# The first run: uploads everything. Exit 0, every row `created` (status is column 6).
for i in "${!NAMES[@]}"; do
    name=${NAMES[$i]}
    bin=${BINS[$i]}
    echo "import with $name ($bin)..." >&2
    start=$EPOCHREALTIME
    "${bin}" run "$WORK/job.csv" --results "$WORK/results-$name.csv" --rate-per-minute 0 \
        --concurrency 16 --quiet 2>"$WORK/import-$name.err" ||
        { echo "import with $name failed:" >&2; cat "$WORK/import-$name.err" >&2; exit 1; }
    el=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
    created=$(awk -F, 'NR > 1 && $6 == "created"' "$WORK/results-$name.csv" | wc -l)
    rows=$(($(wc -l <"$WORK/results-$name.csv") - 1))
    if [ "$created" != "$N" ] || [ "$rows" != "$N" ]; then
        echo "$name: $created of $N rows created ($rows rows)" >&2; exit 1
    fi
    echo "  $N uploads in $el s: $(head -1 "$WORK/import-$name.err")" >&2
done

# One resume of the finished job: appends "name kind wall user sys maxrss_kib blocks_in" to
# $WORK/times. It must exit 0 with the summary "N operations, N skipped as already done" (no
# other count: nothing created, reconciled or failed).
resume() { # name binary kind
    local name=$1 bin=$2 kind=$3 start wall
    start=$EPOCHREALTIME
    if [ "$HAVE_TIME" = 1 ]; then
        /usr/bin/time -f "%U %S %M %I" -o "$WORK/t.txt" "$bin" run "$WORK/job.csv" \
            --results "$WORK/results-$name.csv" --rate-per-minute 0 --quiet 2>"$WORK/resume.err" ||
            { echo "resume with $name failed:" >&2; cat "$WORK/resume.err" >&2; exit 1; }
    else
        "$bin" run "$WORK/job.csv" --results "$WORK/results-$name.csv" --rate-per-minute 0 \
            --quiet 2>"$WORK/resume.err" ||
            { echo "resume with $name failed:" >&2; cat "$WORK/resume.err" >&2; exit 1; }
        echo "- - - -" >"$WORK/t.txt"
    fi
    wall=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
    if ! grep -qx "$N operations, $N skipped as already done" "$WORK/resume.err"; then
        echo "resume with $name did not skip all $N operations:" >&2
        cat "$WORK/resume.err" >&2
        exit 1
    fi
    echo "$name $kind $wall $(tail -1 "$WORK/t.txt")" >>"$WORK/times"
    echo "  $kind $name: ${wall} s; $(sed -n 2p "$WORK/resume.err")" >&2
}

# Warm rounds: every file in the page cache first; binaries in turn so that both see the same
# machine load.
cat "$WORK"/files/*.bin >/dev/null
for r in $(seq "$ROUNDS"); do
    echo "warm round $r" >&2
    for i in "${!NAMES[@]}"; do resume "${NAMES[$i]}" "${BINS[$i]}" warm; done
done

# Cold rounds: page cache dropped before each (files, inodes, the binary and the results file).
COLD_NOTE="cold: not run (COLD=0)"
if [ "$COLD" = 1 ]; then
    if sync && (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then
        COLD_NOTE="cold: page cache, dentries and inodes dropped (sync; echo 3 > /proc/sys/vm/drop_caches) before each"
        for i in "${!NAMES[@]}"; do
            sync
            echo 3 >/proc/sys/vm/drop_caches
            resume "${NAMES[$i]}" "${BINS[$i]}" cold
        done
    else
        COLD_NOTE="cold: not run: cannot write /proc/sys/vm/drop_caches (needs root)"
    fi
fi

# The table: warm median (min-max) and medians of CPU and RSS; cold figures; before/after ratio.
python3 - "$WORK/times" "$N" "$SIZE_KB" "$ROUNDS" "$COLD_NOTE" "${NAMES[@]}" <<'PY'
import statistics as st, sys
path, n, size_kb, rounds, note, names = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:]
rows = [l.split() for l in open(path)]
def num(x):
    return None if x == "-" else float(x)
def of(name, kind):
    return [(float(w), num(u), num(s), num(m), num(i)) for nm, k, w, u, s, m, i in rows if nm == name and k == kind]
def cpu(r):
    return None if r[1] is None else r[1] + r[2]
def fmt(x, f="{:.2f}"):
    return "-" if x is None else f.format(x)
print(f"\nResume of a finished job: {n} uploads of {size_kb} KiB, {rounds} warm rounds; {note}\n")
print("| binary | warm wall, median (min-max) | warm CPU user+sys, median | max RSS | cold wall | cold CPU user+sys | cold disk reads |")
print("| --- | --- | --- | --- | --- | --- | --- |")
med = {}
for name in names:
    w, c = of(name, "warm"), of(name, "cold")
    walls = [r[0] for r in w]
    cpus = [cpu(r) for r in w if cpu(r) is not None]
    rss = [r[3] for r in w + c if r[3] is not None]
    med[name] = st.median(walls)
    cw = fmt(c[0][0], "{:.2f} s") if c else "-"
    cc = fmt(cpu(c[0]), "{:.2f} s") if c else "-"
    cr = fmt(None if not c or c[0][4] is None else c[0][4] * 512 / 2**20, "{:,.0f} MiB") if c else "-"
    print(f"| {name} | {med[name]:.3f} s ({min(walls):.3f}-{max(walls):.3f}) | "
          f"{fmt(st.median(cpus) if cpus else None, '{:.2f} s')} | "
          f"{fmt(max(rss) / 1024 if rss else None, '{:.1f} MiB')} | {cw} | {cc} | {cr} |")
if "before" in med:
    line = f"\nwarm: before/after = {med['before'] / med['after']:.1f}x"
    cb, ca = of("before", "cold"), of("after", "cold")
    if cb and ca:
        line += f"; cold: before/after = {cb[0][0] / ca[0][0]:.1f}x"
    print(line)
PY
