"""A Podman REST API on a unix socket that answers what connecting asks (ping, info, image and container lists):
the Podman machine's API, behind the fake `podman machine` commands."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

VERSION = "5.6.1"


class FakePodmanEngine:
    """Serves at ``path``; ``requests`` lists the paths asked for."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.requests: list[str] = []
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests.append(path)
        if path.endswith("/_ping"):
            return web.Response(text="OK", headers={"Libpod-Api-Version": VERSION})
        if path.endswith("/info"):
            ids = [{"container_id": 0, "host_id": 501, "size": 1},
                   {"container_id": 1, "host_id": 100000, "size": 65536}]
            return web.json_response({"host": {"security": {"rootless": True}, "arch": "amd64", "os": "linux",
                                               "idMappings": {"uidmap": ids, "gidmap": ids},
                                               "cgroupControllers": ["cpu", "memory", "pids"]},
                                      "version": {"Version": VERSION, "APIVersion": VERSION}})
        if "/images/" in path and path.endswith("/json"):
            return web.json_response({"cause": "failed to find image", "message": "no such image",
                                      "response": 404}, status=404)
        if path.endswith("/containers/json"):
            return web.json_response([])
        return web.json_response({"cause": "not found", "message": f"{path} is not faked", "response": 404},
                                 status=404)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.UnixSite(self._runner, str(self.path)).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
