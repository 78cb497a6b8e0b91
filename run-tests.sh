#!/usr/bin/env bash
# Runs the whole test suite against real tools; installs what it needs first (idempotent).
set -euo pipefail
cd "$(dirname "$0")"
./setup.sh --no-demo
# Static checks first: lint, formatting and strict typing of the engine and front ends fail the run like a test.
echo "run-tests: ruff check, ruff format --check, mypy --strict (rpm_bpf/, the DNF 4 plugin, BPFCheck, tools/)"
.venv/bin/ruff check --quiet .
.venv/bin/ruff format --check --quiet .
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
