#!/usr/bin/env bash
# Set up (./.venv) and run the test suite.  Extra arguments go to pytest.
# Tests that need the reference fixtures look for ../shared (see tests/conftest.py).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/python -m pytest -q -m "not slow" "$@"
