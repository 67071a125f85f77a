#!/usr/bin/env bash
# Create .venv (Python 3.11+) and install imagegate with its dev tools; re-run when
# pyproject.toml changes. Idempotent and quiet when there is nothing to do.
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "$candidate"; return 0
    fi
  done
  echo "imagegate needs Python 3.11 or newer (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

stamp=.venv/.imagegate-installed
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
python="$(pick_python)"
[ -x .venv/bin/python ] || "$python" -m venv .venv
log=.venv/bootstrap.log
if ! { .venv/bin/python -m pip install --upgrade pip &&
       .venv/bin/python -m pip install -c constraints.txt -e '.[dev]'; } >"$log" 2>&1; then
  tail -n 40 "$log" >&2
  echo "bootstrap: installing into .venv failed; the full log is $log" >&2
  exit 1
fi
echo "$want" > "$stamp"
echo "bootstrap: .venv ready ($(.venv/bin/python --version))" >&2
