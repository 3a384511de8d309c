#!/usr/bin/env bash
# Crash-safety soak (issue 4, not part of CI): TRIALS runs of an OPS-operation job against a
# sandbox with --drop-after-commit 0.05 --fail-rate 0.05, each killed with SIGKILL at random
# moments and rerun until it exits 0; every trial checks that each operation is on the server
# exactly once and that the results CSV matches the server ID for ID.
set -euo pipefail
cd "$(dirname "$0")/.."
CHAOS_TRIALS="${TRIALS:-20}" CHAOS_OPS="${OPS:-500}" \
  cargo test --release --test it -- --ignored --nocapture chaos_kill_trials
