#!/usr/bin/env bash
# Quick start, command 2: set up and run the whole test suite: lint, types, tests (incl. the frozen-binary smoke test).
# Extra arguments go to pytest, e.g. scripts/test.sh -m "not frozen" -x
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev
# Real containers for the `podman` tests: engine, CI engine settings and the local base image (test setup only).
scripts/setup_podman.sh
# A virtual display for the app window's smoke test, screenshots, and Chromium for the page tests (test setup only).
scripts/setup_ui_tests.sh

echo "==> ruff"
.venv/bin/ruff check .
echo "==> mypy --strict"
.venv/bin/mypy
echo "==> pytest"
.venv/bin/python -m pytest --durations=40 "$@"
