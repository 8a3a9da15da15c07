#!/usr/bin/env bash
# The whole test suite: unit and integration tests (pytest), then the Fluent Bit conformance
# corpus in ../shared/conformance. Exits non-zero when either fails.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
[ -x "$PY" ] || PY=python3

"$PY" -m pytest -q -p no:cacheprovider
pytest_rc=$?

conformance_rc=0
if [ -f ../shared/conformance/run.py ]; then
  "$PY" ../shared/conformance/run.py --cmd "$PWD/.venv/bin/edgeship"
  conformance_rc=$?
else
  echo "../shared/conformance not found: conformance corpus not run" >&2
  conformance_rc=1
fi
[ "$pytest_rc" -eq 0 ] && [ "$conformance_rc" -eq 0 ]
