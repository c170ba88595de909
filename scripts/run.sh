#!/usr/bin/env bash
# Quick start, command 1: set up and run NanoClaw: the app window when there is a display, otherwise headless with
# the URL to open in a browser (`nanoclaw open` prints a sign-in link). Ctrl+C stops it. Extra arguments go to
# `nanoclaw`, e.g. scripts/run.sh --port 9000, or scripts/run.sh serve for headless on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/nanoclaw doctor || true
exec .venv/bin/nanoclaw "$@"
