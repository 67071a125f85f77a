#!/usr/bin/env bash
# Set up (first run only), then lint, type-check and run every test: ./scripts/test.sh [pytest args]
# Runs from any directory (it works in the repository). CI runs exactly this, with CI=true.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
./scripts/bootstrap.sh
./scripts/test-tools.sh
.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy
exec .venv/bin/pytest "$@"
