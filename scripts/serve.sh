#!/usr/bin/env bash
# Set up (first run only) and start the gateway: ./scripts/serve.sh [imagegate serve flags]
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/bootstrap.sh
exec .venv/bin/imagegate serve "$@"
