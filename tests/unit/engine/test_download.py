"""Podman's installer comes from its official release (a fake GitHub on 127.0.0.1 here), with progress, and is kept
only when its checksum matches the published one."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from nanoclaw_app.engine import download
from nanoclaw_app.engine.problem import SetupFailed
from tests.fakes.release_server import FakeReleases

WINDOWS = "podman-installer-windows-amd64.exe"
MAC = "podman-installer-macos-universal.pkg"
PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture
async def releases() -> AsyncIterator[FakeReleases]:
    fake = FakeReleases(files={WINDOWS: PAYLOAD, MAC: PAYLOAD[:1000], "podman-installer-windows-arm64.exe": b"arm"})
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.mark.parametrize(("platform", "arch", "name"), [("win32", "AMD64", WINDOWS),
                                                        ("win32", "ARM64", "podman-installer-windows-arm64.exe"),
                                                        ("darwin", "arm64", MAC), ("darwin", "x86_64", MAC)])
async def test_the_installer_for_this_computer_is_picked(releases: FakeReleases, platform: str, arch: str,
                                                         name: str) -> None:
    async with download.client() as http:
        asset = await download.find_installer(http, platform, arch, api_url=releases.api_url)
    assert asset.name == name
    assert asset.version == "5.6.1"
    assert asset.sha256 == hashlib.sha256(releases.files[name]).hexdigest()


async def test_download_reports_progress_and_keeps_a_checked_file(releases: FakeReleases, tmp_path: Path) -> None:
    seen: list[tuple[int, int | None]] = []
    async with download.client() as http:
        asset = await download.find_installer(http, "win32", "AMD64", api_url=releases.api_url)
        path = await download.download(http, asset, tmp_path / "downloads", lambda d, t: seen.append((d, t)))
    assert path.read_bytes() == PAYLOAD
    assert seen[0] == (0, len(PAYLOAD))
    assert seen[-1] == (len(PAYLOAD), len(PAYLOAD))
    assert len(seen) > 3
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert list((tmp_path / "downloads").iterdir()) == [path]


async def test_the_checksum_comes_from_shasums_when_assets_have_no_digest(releases: FakeReleases) -> None:
    releases.digests = False
    async with download.client() as http:
        asset = await download.find_installer(http, "win32", "AMD64", api_url=releases.api_url)
    assert asset.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    assert "/download/shasums" in releases.requests


async def test_a_damaged_download_is_deleted_unopened(releases: FakeReleases, tmp_path: Path) -> None:
    releases.wrong_sum = True
    async with download.client() as http:
        asset = await download.find_installer(http, "win32", "AMD64", api_url=releases.api_url)
        with pytest.raises(SetupFailed) as failed:
            await download.download(http, asset, tmp_path, lambda d, t: None)
    assert "damaged" in failed.value.problem
    assert "podman.io" in failed.value.fix
    assert list(tmp_path.iterdir()) == []


async def test_a_release_without_an_installer_for_this_computer_says_so(releases: FakeReleases) -> None:
    releases.files = {"podman-remote-static-linux_amd64.tar.gz": b"x"}
    async with download.client() as http:
        with pytest.raises(SetupFailed, match="has no installer for this computer"):
            await download.find_installer(http, "darwin", "arm64", api_url=releases.api_url)


async def test_githubs_rate_limit_is_explained(releases: FakeReleases) -> None:
    releases.status = 403
    async with download.client() as http:
        with pytest.raises(SetupFailed) as failed:
            await download.find_installer(http, "win32", "AMD64", api_url=releases.api_url)
    assert "too many requests" in failed.value.problem
    assert "try again in an hour" in failed.value.fix


async def test_no_internet_is_explained(releases: FakeReleases) -> None:
    url = releases.api_url
    await releases.stop()
    async with download.client() as http:
        with pytest.raises(SetupFailed) as failed:
            await download.find_installer(http, "win32", "AMD64", api_url=url)
    assert "could not reach GitHub" in failed.value.problem
    assert "internet connection" in failed.value.fix
