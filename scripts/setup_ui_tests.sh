#!/usr/bin/env bash
# Test setup for the UI tests (called by scripts/test.sh; never by the app):
#   - Xvfb and xauth: a virtual X display for the app window's smoke test (tests/web/test_window.py);
#   - imagemagick: `import -window root` screenshots of that display;
#   - chromium: the browser Playwright drives for the page tests (Debian's build; Playwright downloads none);
#   - fonts-dejavu-core, fonts-noto-color-emoji: readable text and emoji (card titles) in screenshots;
#   - trayer and dbus-daemon: a system tray (XEmbed) and a session bus on that display, so the desktop tests see the
#     app close to its tray icon (tests/desktop, tests/frozen/test_window.py).
#   - xdotool: bench/frozen.py times the frozen app until its window is mapped;
#   - desktop-file-utils: desktop-file-validate checks the Linux packages' menu entry (tests/frozen).
# Safe to re-run: it installs only what is missing.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
need=()
for pkg in xvfb xauth imagemagick chromium fonts-dejavu-core fonts-noto-color-emoji trayer dbus-daemon \
           xdotool desktop-file-utils curl; do
  installed "$pkg" || need+=("$pkg")
done
if [ "${#need[@]}" -gt 0 ]; then
  echo "==> installing UI test packages: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
echo "==> UI tests ready: Xvfb, ImageMagick, $(chromium --version 2>/dev/null)"
