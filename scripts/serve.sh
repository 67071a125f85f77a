#!/usr/bin/env bash
# Set up (first run only) and start the gateway: ./scripts/serve.sh [imagegate serve flags]
# Runs from any directory and serves from the one you are in, so `--config imagegate.yaml` and
# a .env file are read from there, as with `imagegate serve` itself.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/scripts/bootstrap.sh"
exec "$root/.venv/bin/imagegate" serve "$@"
