"""Podman's official installer, from Podman's own release on GitHub, checked against the release's checksums.

The release API names the current installer for each system; the file is streamed to disk with progress and its
SHA-256 compared with the one the release publishes (the asset's ``digest``, else the ``shasums`` file), so a broken
or swapped download is never run.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import httpx

from nanoclaw_app.engine.problem import SetupFailed

log = logging.getLogger(__name__)

RELEASES_API = "https://api.github.com/repos/containers/podman/releases/latest"
MANUAL = "or install Podman yourself from https://podman.io and click “Check again”"
Progress = Callable[[int, int | None], None]
"""``progress(bytes_done, bytes_total_or_None)``."""


@dataclass(frozen=True, slots=True)
class Asset:
    """One installer file of a Podman release."""

    name: str
    url: str
    size: int | None
    sha256: str
    version: str


def installer_names(platform: str, arch: str) -> list[str]:
    """The release file names that install Podman here, best first."""
    arch = arch.lower()
    if platform == "win32":
        return ["podman-installer-windows-arm64.exe"] if arch in ("arm64", "aarch64") else \
            ["podman-installer-windows-amd64.exe"]
    if platform == "darwin":
        own = "arm64" if arch in ("arm64", "aarch64") else "amd64"
        return ["podman-installer-macos-universal.pkg", f"podman-installer-macos-{own}.pkg"]
    return []


def client(**kwargs: Any) -> httpx.AsyncClient:
    """The HTTP client for GitHub: redirects followed (downloads are redirected to a file host), patient reads."""
    return httpx.AsyncClient(follow_redirects=True, timeout=httpx.Timeout(30.0, read=120.0),
                             headers={"User-Agent": "NanoClaw", "Accept": "application/vnd.github+json"}, **kwargs)


async def find_installer(http: httpx.AsyncClient, platform: str, arch: str, *, api_url: str = RELEASES_API) -> Asset:
    """The installer of Podman's latest release for this system, with its checksum."""
    wanted = installer_names(platform, arch)
    if not wanted:
        raise SetupFailed("Podman's installer is for macOS and Windows only",
                          "install Podman with your distribution's package manager")
    release = await _json(http, api_url, "the list of Podman releases")
    assets = release.get("assets") if isinstance(release, dict) else None
    by_name = {a.get("name"): a for a in assets or [] if isinstance(a, dict)}
    version = str(release.get("tag_name") or "").lstrip("v") if isinstance(release, dict) else ""
    name = next((n for n in wanted if n in by_name), None)
    if name is None:
        raise SetupFailed(f"Podman's latest release ({version or 'unknown'}) has no installer for this computer "
                          f"({' or '.join(wanted)})", "try again later, " + MANUAL)
    entry = by_name[name]
    digest = str(entry.get("digest") or "")
    sha = digest.removeprefix("sha256:") if digest.startswith("sha256:") else ""
    if not sha and "shasums" in by_name:
        sha = _sum_for(await _text(http, str(by_name["shasums"].get("browser_download_url")), "the checksums"), name)
    if not sha:
        raise SetupFailed(f"Podman's release {version} publishes no checksum for {name}, so its download cannot be "
                          "checked", "try again later, " + MANUAL)
    size = entry.get("size")
    return Asset(name=name, url=str(entry.get("browser_download_url")), size=size if isinstance(size, int) else None,
                 sha256=sha.lower(), version=version)


async def download(http: httpx.AsyncClient, asset: Asset, folder: Path, progress: Progress) -> Path:
    """Stream the installer into ``folder`` and return its path, once its checksum matched (else nothing is kept)."""
    _make_private(folder)
    target = folder / asset.name
    partial = folder / f"{asset.name}.part"
    digest = hashlib.sha256()
    done = 0
    try:
        async with http.stream("GET", asset.url) as response:
            if response.status_code != 200:
                raise SetupFailed(f"GitHub answered HTTP {response.status_code} for Podman's installer",
                                  "try again in a few minutes, " + MANUAL)
            header = response.headers.get("Content-Length")
            total = int(header) if header and header.isdigit() else asset.size
            progress(0, total)
            with _open_new(partial) as out:
                async for chunk in response.aiter_bytes():  # as it arrives: the bar moves smoothly
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    progress(done, total)
    except httpx.HTTPError as err:
        partial.unlink(missing_ok=True)
        raise SetupFailed(f"the download of Podman's installer broke off after {done // 1_000_000} MB ({_say(err)})",
                          "check the internet connection and try again, " + MANUAL) from err
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if digest.hexdigest() != asset.sha256:
        partial.unlink(missing_ok=True)
        raise SetupFailed("the downloaded installer is damaged (its checksum does not match the one Podman "
                          "published), so it was deleted unopened", "try again, " + MANUAL)
    _replace(partial, target)
    log.info("downloaded %s (%d bytes, sha256 checked)", asset.name, done)
    return target


def _make_private(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)


def _open_new(path: Path) -> BinaryIO:
    return open(path, "wb")


def _replace(partial: Path, target: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        target.unlink()
    partial.rename(target)


def _sum_for(text: str, name: str) -> str:
    """The SHA-256 of ``name`` in a ``sha256sum``-style list."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == name:
            return parts[0]
    return ""


async def _json(http: httpx.AsyncClient, url: str, what: str) -> Any:
    response = await _get(http, url, what)
    try:
        return response.json()
    except ValueError as err:
        raise SetupFailed(f"GitHub sent something unexpected for {what}", "try again later, " + MANUAL) from err


async def _text(http: httpx.AsyncClient, url: str, what: str) -> str:
    return (await _get(http, url, what)).text


async def _get(http: httpx.AsyncClient, url: str, what: str) -> httpx.Response:
    try:
        response = await http.get(url)
    except httpx.HTTPError as err:
        raise SetupFailed(f"NanoClaw could not reach GitHub to fetch {what} ({_say(err)})",
                          "check the internet connection and try again, " + MANUAL) from err
    if response.status_code == 403 and "rate limit" in response.text.lower():
        raise SetupFailed("GitHub refused to answer for now (too many requests from this network)",
                          "try again in an hour, " + MANUAL)
    if response.status_code != 200:
        raise SetupFailed(f"GitHub answered HTTP {response.status_code} for {what}", "try again later, " + MANUAL)
    return response


def _say(err: BaseException) -> str:
    text = str(err) or type(err).__name__
    cause = err.__cause__ or err.__context__
    if cause is not None and str(cause) and str(cause) not in text:
        text = f"{text}: {cause}"
    return text
