"""Podman's GitHub releases on 127.0.0.1: the release API (``releases/latest``), the installers and ``shasums``.

``hold(name)`` makes a download stop halfway until ``release()``: a test can look at the page mid-download.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass, field

from aiohttp import web

API_PATH = "/repos/containers/podman/releases/latest"


@dataclass
class FakeReleases:
    """Serves one release whose assets are ``files`` (name → bytes)."""

    files: dict[str, bytes] = field(default_factory=dict)
    version: str = "5.6.1"
    digests: bool = True
    """Publish each asset's ``digest`` (newer GitHub API); else only a ``shasums`` file."""
    wrong_sum: bool = False
    status: int = 200
    chunks: int = 8
    requests: list[str] = field(default_factory=list)
    url: str = ""
    _held: set[str] = field(default_factory=set)
    _go: asyncio.Event = field(default_factory=asyncio.Event)
    _reached_half: asyncio.Event = field(default_factory=asyncio.Event)
    _runner: web.AppRunner | None = None

    @property
    def api_url(self) -> str:
        return self.url + API_PATH

    def hold(self, name: str) -> None:
        self._held.add(name)

    async def halfway(self) -> None:
        """Wait until a held download has sent half of its file."""
        await self._reached_half.wait()

    def release(self) -> None:
        self._go.set()

    def _sha(self, data: bytes) -> str:
        return hashlib.sha256(data + (b"x" if self.wrong_sum else b"")).hexdigest()

    async def _api(self, request: web.Request) -> web.Response:
        self.requests.append(request.path)
        if self.status != 200:
            return web.json_response({"message": "API rate limit exceeded for 203.0.113.9."}, status=self.status)
        assets = [{"name": name, "size": len(data), "browser_download_url": f"{self.url}/download/{name}",
                   **({"digest": f"sha256:{self._sha(data)}"} if self.digests else {})}
                  for name, data in self.files.items()]
        if not self.digests:
            assets.append({"name": "shasums", "size": 0, "browser_download_url": f"{self.url}/download/shasums"})
        return web.json_response({"tag_name": f"v{self.version}", "assets": assets})

    async def _download(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.requests.append(request.path)
        if name == "shasums":
            return web.Response(text="".join(f"{self._sha(d)}  {n}\n" for n, d in self.files.items()))
        data = self.files.get(name)
        if data is None:
            return web.Response(status=404, text="Not Found")
        response = web.StreamResponse(headers={"Content-Length": str(len(data))})
        await response.prepare(request)
        size = max(1, len(data) // self.chunks)
        for start in range(0, len(data), size):
            if name in self._held and start >= len(data) // 2:
                self._reached_half.set()
                await self._go.wait()
            await response.write(data[start:start + size])
        await response.write_eof()
        return response

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(API_PATH, self._api)
        app.router.add_get("/download/{name}", self._download)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        self._go.set()
        if self._runner is not None:
            await self._runner.cleanup()
