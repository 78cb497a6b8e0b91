#!/usr/bin/env bash
# Runs the whole test suite against real tools; installs what it needs first (idempotent).
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh --no-demo
exec .venv/bin/python -m pytest "$@"
