#!/usr/bin/env bash
# Run the test suite: creates .venv (if needed) with the project and its test tools, then pytest.
# Extra arguments go to pytest, e.g. ./run-tests.sh -m slow   or   ./run-tests.sh tests/ipydeps
set -euo pipefail
cd "$(dirname "$0")"
VENV="${IPYDEPS_TEST_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating $VENV"
    "$PYTHON" -m venv "$VENV"
fi
echo "==> installing ipydeps-client (with its jupyter and test extras) and ipydeps-repo"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# The client's distribution was named `ipydeps` before it became `ipydeps-client` (that name on
# PyPI is someone else's): an older venv of ours may still list it.
"$VENV/bin/python" -m pip uninstall --quiet --yes ipydeps 2> /dev/null || true
"$VENV/bin/python" -m pip install --quiet -e '.[jupyter,test]' -e ./repo-server

echo "==> running tests"
exec "$VENV/bin/python" -m pytest -m "not slow" "$@"
