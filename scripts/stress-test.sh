#!/usr/bin/env bash
# Run what CI runs (`make test`'s pytest command, with PostgreSQL when FILLFINISH_TEST_PG_URL is set) RUNS times in
# a row while BURNERS CPU-heavy processes compete for the cores (docs/testing.md).
#   scripts/stress-test.sh [RUNS=5] [BURNERS=2]
# PYTHON picks the interpreter (default .venv/bin/python). Stops at the first failing run; prints each run's pytest
# summary line, its wall time and the load average, and the total.
set -euo pipefail
unset PYTHONDONTWRITEBYTECODE  # keep compiled bytecode, as `make test` does (Makefile)
cd "$(dirname "$0")/.."
runs=${1:-5}
burners=${2:-2}
python=${PYTHON:-.venv/bin/python}
logs=${STRESS_LOGS:-$(mktemp -d /tmp/fillfinish-stress.XXXXXX)}  # each run's whole pytest output
mkdir -p "$logs"
read -r -a args <<< "$(make -s pytest-args)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT
for _ in $(seq "$burners"); do
    python3 -c 'while True: sum(i * i for i in range(10000))' &
    pids+=($!)
done
echo "logs: $logs"
echo "command: $python -m pytest ${args[*]} (PostgreSQL: $([[ -n "${FILLFINISH_TEST_PG_URL:-}" ]] && echo yes || echo no)), $burners CPU burners"
total_start=$(date +%s)
for run in $(seq "$runs"); do
    start=$(date +%s)
    if ! out=$("$python" -m pytest "${args[@]}" 2>&1 | tee "$logs/run-$run.log"; exit "${PIPESTATUS[0]}"); then
        echo "$out" | grep -E "^(FAILED|ERROR)|^E  " | head -n 40
        echo "$out" | tail -n 1
        echo "run $run of $runs FAILED after $(( $(date +%s) - start )) s with $burners CPU burners (load $(cut -d' ' -f1-3 /proc/loadavg))"
        exit 1
    fi
    echo "run $run of $runs: $(echo "$out" | tail -n 1) in $(( $(date +%s) - start )) s (load $(cut -d' ' -f1-3 /proc/loadavg))"
done
echo "all $runs runs passed with $burners CPU burners in $(( $(date +%s) - total_start )) s"
