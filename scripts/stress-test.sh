#!/usr/bin/env bash
# Run the whole test suite N times in a row while K CPU-heavy processes compete for the cores (docs/testing.md).
#   scripts/stress-test.sh [RUNS=5] [BURNERS=2]
# Stops at the first failing run; prints each run's pytest summary line and the total.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
burners=${2:-2}
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
for _ in $(seq "$burners"); do
    python3 -c 'while True: sum(i * i for i in range(10000))' &
    pids+=($!)
done
for run in $(seq "$runs"); do
    start=$(date +%s)
    if ! out=$(.venv/bin/python -m pytest -q -p no:cacheprovider 2>&1); then
        echo "$out" | tail -n 30
        echo "run $run of $runs FAILED with $burners CPU burners"
        exit 1
    fi
    echo "run $run of $runs: $(echo "$out" | tail -n 1) ($(( $(date +%s) - start )) s, $burners CPU burners)"
done
echo "all $runs runs passed with $burners CPU burners"
