#!/usr/bin/env bash
# Quick start, command 1: set up and run NanoClaw: the app window when there is a display, otherwise headless with
# the URL to open in a browser and the command that prints a sign-in link (here .venv/bin/nanoclaw open, by its full
# path). Ctrl+C stops it. Extra arguments go to `nanoclaw`, e.g. scripts/run.sh --port 9000, or scripts/run.sh serve
# for headless on purpose. .venv/bin is deliberately not put on PATH here: that would reach only this script's own
# process, and the sign-in command is typed in another terminal.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/nanoclaw doctor || true
exec .venv/bin/nanoclaw "$@"
