#!/usr/bin/env bash
# Soak (issue 14, not part of CI): jobs of SOAK_SIZES operations (default 2000,10000,20000)
# against a sandbox with --fail-rate 0.05 --drop-after-commit 0.02 --error-after-commit 0.02
# --garble-after-commit 0.02 --latency-ms 5-80, rerun until exit 0; checks exactly-once
# against the server's state, ID for ID, and prints the client's peak RSS per size
# (must grow sub-linearly, below 200 MiB at 20,000). Release build.
set -euo pipefail
cd "$(dirname "$0")/.."
SOAK_SIZES="${SOAK_SIZES:-2000,10000,20000}" \
  cargo test --release --test it -- --ignored --nocapture soak_exactly_once_with_bounded_memory
