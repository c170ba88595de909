"""Entry for ``python -m nanoclaw_app`` and the PyInstaller binary."""

from nanoclaw_app.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
