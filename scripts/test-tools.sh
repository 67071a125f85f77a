#!/usr/bin/env bash
# What the tests need besides .venv: curl, Node.js and npm, redis-server and nginx (the
# multi-replica tests run real ones on loopback), and the OpenAI Node SDK pinned in tests/node. Installs what is missing (apt-get, as root on a Debian-like machine, as CI runs);
# idempotent and quiet when everything is there. Under CI=true a tool that is still missing
# fails the run here: CI must never pass by skipping the tests that use it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "test-tools: $*" >&2; }
in_ci() { case "${CI:-}" in true | TRUE | True | 1 | yes) return 0 ;; *) return 1 ;; esac; }

missing() { # the Debian packages of the tools not on PATH
  local out=()
  command -v curl >/dev/null 2>&1 || out+=(curl)
  command -v node >/dev/null 2>&1 || out+=(nodejs)
  command -v npm >/dev/null 2>&1 || out+=(npm)
  command -v redis-server >/dev/null 2>&1 || out+=(redis-server)
  command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || out+=(nginx)
  echo "${out[@]}"
}

need=$(missing)
if [ -n "$need" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  say "installing $need (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update >&2
  # shellcheck disable=SC2086 # one word per package
  apt-get install -y $need >&2
  need=$(missing)
fi
if [ -n "$need" ]; then
  if in_ci; then
    say "$need missing and not installable here (needs root and apt-get); CI fails rather" \
      "than skip the tests that use them"
    exit 1
  fi
  say "$need missing: the tests that need them are skipped (CI=true fails instead)"
fi

# The Node SDK, reinstalled when tests/node/package-lock.json changes.
if command -v npm >/dev/null 2>&1; then
  stamp=tests/node/node_modules/.imagegate-installed
  want="$(sha256sum tests/node/package-lock.json | cut -d' ' -f1)"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    say "npm ci in tests/node (the OpenAI Node SDK the tests drive)"
    (cd tests/node && npm ci --no-audit --no-fund) >&2
    echo "$want" >"$stamp"
  fi
fi
