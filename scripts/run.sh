#!/usr/bin/env bash
# Quick start, command 1: set up and run NanoClaw (headless for now: open the printed URL).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
.venv/bin/nanoclaw doctor || true
exec .venv/bin/nanoclaw serve "$@"
