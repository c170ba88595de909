"""Attack tests: each plays the attacker against the real host (a real container with ``podman exec`` where one is
involved). The real-Podman fixtures are shared from ``tests/podman/`` here, once for the whole folder, so every module
uses one engine service; modules that need it mark themselves ``podman``.
"""

from tests.podman.conftest import agent_image, podman_host_factory, podman_url

__all__ = ["agent_image", "podman_host_factory", "podman_url"]
