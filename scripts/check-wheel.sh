#!/usr/bin/env bash
# Packaging check (CI): build the wheel, install it into a clean venv outside the checkout, validate the shipped
# recipes and run a 10-vial demo (the shipped FGF-2 recipe's minimum) with it. Proves `pip install .` works without the source tree.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
work=$(mktemp -d /tmp/fillfinish-wheel-XXXXXX)
trap 'rm -rf "$work"' EXIT

"$PY" -m pip wheel --quiet --no-deps --wheel-dir "$work/dist" . 2>&1 | grep -v -e '^WARNING: Location' -e '^\s*$' || true
"$PY" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "$work/dist"/fillfinish-*.whl 2>&1 | grep -v '^WARNING: Location' || true
cd "$work"   # outside the checkout: nothing of the source tree is importable from here
"$work/venv/bin/fillfinish" recipe validate
"$work/venv/bin/fillfinish" demo --vials 10 --db "$work/demo.db"
echo "wheel check: ok (recipes validated, 10-vial demo complete, the recipe's minimum batch)"
