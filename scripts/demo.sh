#!/usr/bin/env bash
# Set up (./.venv) and run the demo: a fresh synthetic clip, tracked by the packaged default model
# with the free body model, scored against its ground truth.  Extra arguments go to `comotion demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
exec .venv/bin/comotion demo "$@"
