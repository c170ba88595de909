#!/usr/bin/env bash
# Sets up everything NanoClaw needs on Debian/Ubuntu: system packages and the Python environment in .venv.
#   scripts/setup.sh          app only
#   scripts/setup.sh --dev    app + test/dev tools (lint, types, tests, PyInstaller)
# Safe to re-run: it skips what is already in place.
set -euo pipefail
cd "$(dirname "$0")/.."

DEV=0
[ "${1:-}" = "--dev" ] && DEV=1

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  need_apt+=(python3-venv)
fi
command -v git >/dev/null 2>&1 || need_apt+=(git)
# Agents run in Podman containers (uidmap: rootless Podman for normal users).
command -v podman >/dev/null 2>&1 || need_apt+=(podman uidmap)
if [ "$DEV" = 1 ]; then
  # binutils: PyInstaller needs objdump/objcopy to collect shared libraries.
  command -v objdump >/dev/null 2>&1 || need_apt+=(binutils)
fi
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "==> installing system packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

python3 - <<'PY'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"NanoClaw needs Python 3.11 or newer; this is {sys.version.split()[0]}")
PY

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  python3 -m venv .venv
fi

stamp=".venv/.nanoclaw-installed-$DEV-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "==> installing Python packages"
  .venv/bin/python -m pip install -q --upgrade "pip>=25.1"
  if [ "$DEV" = 1 ]; then
    .venv/bin/python -m pip install -q -e . --group dev
  else
    .venv/bin/python -m pip install -q -e .
  fi
  rm -f .venv/.nanoclaw-installed-*
  touch "$stamp"
fi
echo "==> environment ready (.venv)"
