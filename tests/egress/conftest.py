"""A real egress server (tcp listeners) in front of a real fake HTTPS API, and clients that go through it."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from nanoclaw_app.egress import caller_token
from nanoclaw_app.egress.mitm import Limits
from nanoclaw_app.egress.server import EgressAccess, EgressServer
from tests.egress.policy_fake import FakePolicy
from tests.fakes.https_api import FakeHttpsApi

SECRET = "sk-test-SECRET-123"


@pytest.fixture
async def fake_api() -> AsyncIterator[FakeHttpsApi]:
    api = FakeHttpsApi()
    await api.start()
    yield api
    await api.stop()


@pytest.fixture
def policy() -> FakePolicy:
    return FakePolicy()


async def start_egress(policy: FakePolicy, tmp_path: Path, fake_api: FakeHttpsApi, *, transport: str = "tcp",
                       limits: Limits | None = None, trust_fake: bool = True,
                       exceptions: tuple[str, ...] | None = None) -> EgressServer:
    server = EgressServer(policy, ca_folder=tmp_path / "ca", run_dir=tmp_path / "run",
                          transport=transport,  # type: ignore[arg-type]
                          exceptions=exceptions if exceptions is not None else (f"127.0.0.1:{fake_api.port}",),
                          extra_ca_file=str(fake_api.ca_file) if trust_fake else "", limits=limits)
    await server.start()
    return server


@pytest.fixture
async def egress(policy: FakePolicy, tmp_path: Path, fake_api: FakeHttpsApi) -> AsyncIterator[EgressServer]:
    server = await start_egress(policy, tmp_path, fake_api)
    yield server
    await server.stop()


@pytest.fixture
async def access(egress: EgressServer) -> EgressAccess:
    return await egress.attach("sess-1", "ag-1")


def proxy_url(access: EgressAccess) -> str:
    """The listener's address with its token, as the container's proxy variables carry it."""
    assert access.port is not None
    assert access.token is not None
    return caller_token.proxy_url("127.0.0.1", access.port, access.token)


def client(access: EgressAccess, cafile: Path | str) -> httpx.AsyncClient:
    """An httpx client using the proxy, trusting only ``cafile``."""
    return httpx.AsyncClient(proxy=proxy_url(access), verify=ssl.create_default_context(cafile=str(cafile)),
                             trust_env=False, timeout=20)
