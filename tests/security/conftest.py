"""Attack tests: each plays the attacker against the real host (a real container with ``podman exec`` where one is
involved). Modules that need real Podman import its fixtures from ``tests.podman.conftest`` and mark themselves
``podman``.
"""
