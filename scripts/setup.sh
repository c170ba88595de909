#!/usr/bin/env bash
# Sets up everything NanoClaw needs on Debian/Ubuntu: system packages (Podman, WebKitGTK for the app window) and the
# Python environment in .venv.
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
# The app window on Linux: GTK with WebKitGTK, and what PyGObject (the `gtk` extra) builds against.
window_apt=(gir1.2-webkit2-4.1 libwebkit2gtk-4.1-0 gir1.2-gtk-3.0 libgirepository1.0-dev libcairo2-dev pkg-config gcc)
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import sysconfig, os, sys
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' >/dev/null 2>&1; then
  window_apt+=(python3-dev)
fi
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for pkg in "${window_apt[@]}"; do
  installed "$pkg" || need_apt+=("$pkg")
done
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
  groups=()
  [ "$DEV" = 1 ] && groups=(--group dev)
  # `gtk`: the window's backend (PyGObject, built here against the packages above). Without it the app still runs,
  # headless, so a failed build is reported and the rest installed.
  if ! .venv/bin/python -m pip install -q -e ".[gtk]" "${groups[@]}"; then
    echo "!! the window's GTK backend (PyGObject) did not install; NanoClaw will run headless (open it in a browser)" >&2
    .venv/bin/python -m pip install -q -e . "${groups[@]}"
  fi
  rm -f .venv/.nanoclaw-installed-*
  touch "$stamp"
fi
echo "==> environment ready (.venv)"
