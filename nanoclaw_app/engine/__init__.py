"""Setting up the container engine for the user on macOS and Windows.

Preflight checks, Podman's installer, the Podman machine, and the relay that lets the app reach a Windows machine's
named pipe.

Each module runs the operating system's own tools as subprocesses (``podman``, ``wsl``, ``powershell``, the
installer) and turns what they print into plain words; the wizard's container step drives them through
``nanoclaw_app/services/engine_setup.py``.
"""
