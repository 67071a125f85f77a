#!/usr/bin/env bash
# Create .venv (Python 3.11+) and install imagegate with its dev tools; re-run when
# pyproject.toml or constraints.txt change. Idempotent and quiet when there is nothing to do;
# on a first run it says what it does, and pip's own output shows the progress (on stderr).
# Runs from any directory: it changes into the repository in its own process only.
# PYTHON=/path/to/python3.12 picks the interpreter; one that cannot be used is an error.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

say() { echo "bootstrap: $*" >&2; }

version_of() { # version_of <python>: "3.11.7", or nothing if it does not run as Python
  "$1" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null || true
}

usable() { # usable <python> [quiet]: 3.11+ with venv and ensurepip; says why not unless quiet
  local python=$1 quiet=${2:-} version
  if ! command -v "$python" >/dev/null 2>&1; then
    [ -n "$quiet" ] || say "PYTHON=$python is neither a command on PATH nor an executable file"
    return 1
  fi
  version=$(version_of "$python")
  if [ -z "$version" ]; then
    [ -n "$quiet" ] || say "PYTHON=$python does not run as Python"
    return 1
  fi
  if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    [ -n "$quiet" ] || say "PYTHON=$python is Python $version; imagegate needs 3.11 or newer"
    return 1
  fi
  if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
    [ -n "$quiet" ] || say "PYTHON=$python (Python $version) cannot create a virtual" \
      "environment: it lacks the venv or ensurepip module (Debian/Ubuntu: apt-get install" \
      "python3-venv)"
    return 1
  fi
}

pick_python() {
  if [ -n "${PYTHON:-}" ]; then
    echo "$PYTHON"
    return 0
  fi
  for candidate in python3.13 python3.12 python3.11 python3; do
    if usable "$candidate" quiet; then
      echo "$candidate"
      return 0
    fi
  done
  say "imagegate needs Python 3.11 or newer with venv (set PYTHON=/path/to/python3.11)"
  return 1
}

# A PYTHON that cannot be used is an error even when .venv is ready: it was asked for.
if [ -n "${PYTHON:-}" ] && ! usable "$PYTHON"; then
  exit 1
fi

stamp=.venv/.imagegate-installed
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
recreate=
if [ -n "${PYTHON:-}" ] && [ -x .venv/bin/python ] &&
   [ "$(version_of .venv/bin/python)" != "$(version_of "$PYTHON")" ]; then
  recreate=yes
fi
if [ -z "$recreate" ] && [ -x .venv/bin/python ] && [ -f "$stamp" ] &&
   [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi

python="$(pick_python)"
if [ -n "$recreate" ]; then
  say "re-creating $root/.venv: it has Python $(version_of .venv/bin/python)," \
    "PYTHON=$python is $(version_of "$python")"
  "$python" -m venv --clear .venv
elif [ ! -x .venv/bin/python ]; then
  say "creating $root/.venv with $python (Python $(version_of "$python"))"
  "$python" -m venv .venv
fi

log=.venv/bootstrap.log
: >"$log"
run() { # run <command...>: its output on stderr as it comes, and in the log
  "$@" 2>&1 | tee -a "$log" >&2
}
say "installing imagegate and its dev tools into .venv, pinned by constraints.txt" \
  "(about a minute the first time)"
if ! { run .venv/bin/python -m pip install --upgrade pip &&
       run .venv/bin/python -m pip install -c constraints.txt -e '.[dev]'; }; then
  say "installing into .venv failed (pip's output is above and in $root/$log)"
  exit 1
fi
echo "$want" >"$stamp"
say ".venv ready ($(.venv/bin/python --version)) after ${SECONDS}s"
