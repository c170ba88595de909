"""The app as a child process (from source or the frozen binary), a home seeded to answer chats through a fake
model, and the few HTTP calls a user's browser would make against it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from nanoclaw_app.db import agents, app_state
from nanoclaw_app.db.database import Database
from nanoclaw_app.desktop.control import send_command
from nanoclaw_app.desktop.instance import InstanceRecord, read_record
from nanoclaw_app.paths import Paths
from nanoclaw_app.runfile import read_run_file
from nanoclaw_app.secrets.backend import PASSPHRASE_ENV
from nanoclaw_app.secrets.encrypted_file import EncryptedFileKeyring, secrets_file
from nanoclaw_app.services import chat
from nanoclaw_app.services.auth import issue_login_token
from nanoclaw_app.services.offline import offline_services
from nanoclaw_app.settings import load_settings
from nanoclaw_app.web.controllers.session import WIZARD_DONE
from tests.fakes.anthropic_server import FakeAnthropic, Text

WAIT_SECONDS = 60.0
PASSPHRASE = "desktop-test-passphrase"
API_KEY = "sk-ant-api03-desktop-test-key-0123456789abcdef"


class AppProcess:
    """One launch; output is read by threads so the child never blocks on a full pipe."""

    def __init__(self, argv: Sequence[str], env: dict[str, str], cwd: Path | None = None) -> None:
        self.proc = subprocess.Popen(list(argv), env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.out: list[str] = []
        self.err: list[str] = []
        self._changed = threading.Condition()
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: IO[str], lines: list[str]) -> None:
        for line in stream:
            with self._changed:
                lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def output(self) -> str:
        return "".join(self.out) + "".join(self.err)

    def wait_for(self, text: str) -> str:
        """The first line (stdout or stderr) containing ``text``."""
        deadline = time.monotonic() + WAIT_SECONDS
        with self._changed:
            while True:
                found = next((line for line in [*self.out, *self.err] if text in line), None)
                if found is not None:
                    return found
                if self.proc.poll() is not None and not any(r.is_alive() for r in self._readers):
                    pytest.fail(f"the app exited ({self.proc.returncode}) before printing {text!r}:\n{self.output}")
                if time.monotonic() > deadline:
                    pytest.fail(f"the app did not print {text!r} within {WAIT_SECONDS:.0f} s:\n{self.output}")
                self._changed.wait(1.0)

    def wait(self) -> int:
        try:
            code = self.proc.wait(WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the app did not exit within {WAIT_SECONDS:.0f} s:\n{self.output}")
        self._close()
        return code

    def kill(self) -> None:
        """End a launch a test left running: SIGTERM first, so the app stops its runners and services too."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close()

    def _close(self) -> None:
        for reader in self._readers:
            reader.join(10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None and not stream.closed:
                stream.close()


REPLY = "Still here, with or without the window."


@contextmanager
def fake_model() -> Iterator[str]:
    """The fake Anthropic API on a loop of its own, so the test may block while the app calls it; yields its URL.

    Every answer is :data:`REPLY`, addressed to the owner's in-app chat.
    """
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-model", daemon=True)
    thread.start()

    async def start() -> FakeAnthropic:
        fake = FakeAnthropic()
        fake.responder = lambda _body: Text(f'<message to="app-chat">{REPLY}</message>')
        await fake.start()
        return fake

    fake = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        yield fake.url
    finally:
        asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def app_env(base: dict[str, str], tmp_path: Path, fake_url: str) -> dict[str, str]:
    """A test home, the local runtime, the fake model behind the gateway, the test's own user dirs."""
    env = {k: v for k, v in base.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "PYWEBVIEW_GUI", "DBUS_SESSION_BUS_ADDRESS")}
    for folder in ("user", "xdg-run", "xdg-config"):
        (tmp_path / folder).mkdir(mode=0o700, exist_ok=True)
    env.update(NANOCLAW_HOME=str(tmp_path / "home"), NANOCLAW_CONFIG_DIR=str(tmp_path / "config"),
               NANOCLAW_RUNTIME="local", NANOCLAW_ANTHROPIC_BASE_URL=fake_url,
               PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring", HOME=str(tmp_path / "user"),
               XDG_RUNTIME_DIR=str(tmp_path / "xdg-run"), XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
               PYSTRAY_BACKEND="gtk")
    env[PASSPHRASE_ENV] = PASSPHRASE
    return env


async def seed_home(paths: Paths) -> str:
    """An agent with the owner's in-app chat, the model key in the encrypted store, setup done; returns the agent."""
    paths.ensure()
    store = await asyncio.to_thread(EncryptedFileKeyring.create, secrets_file(paths), PASSPHRASE)
    await asyncio.to_thread(store.set_password, "nanoclaw", "anthropic_api_key", API_KEY)
    async with offline_services(load_settings(paths)) as services:
        agent = await agents.create(services.ctx.db, "Nano")
        await agents.update_config(services.ctx.db, agent.id, provider="anthropic", model="claude-test")
        await chat.ensure_owner_chat(services, agent.id)
        await app_state.put(services.ctx.db, WIZARD_DONE, "1")
    return agent.id


def record(paths: Paths) -> InstanceRecord:
    found = read_record(paths)
    assert found is not None, "the running app left no instance record"
    return found


def command(paths: Paths, name: str, **args: Any) -> dict[str, Any]:
    reply = send_command(record(paths), name, **args)
    assert reply is not None, f"the running app did not answer {name!r}"
    return reply


def app_url(paths: Paths) -> str:
    running = read_run_file(paths)
    assert running is not None, "the app wrote no run file"
    return str(running["url"])


async def signed_in_client(paths: Paths) -> httpx.AsyncClient:
    """A browser's session on the running app: a one-time link from the database, then the CSRF cookie."""
    async with Database(paths.central_db) as db:
        token = await issue_login_token(db)
    client = httpx.AsyncClient(base_url=app_url(paths).rstrip("/"), timeout=30)
    response = await client.get(f"/login?token={token}", follow_redirects=False)
    assert response.status_code in (302, 303, 307), response.text
    await client.get("/health")
    csrf = client.cookies.get("nanoclaw_csrf")
    assert csrf
    client.headers["x-csrftoken"] = csrf
    return client


async def chat_round_trip(paths: Paths, text: str) -> str:
    """Type ``text`` in the in-app chat and wait for the agent's answer."""
    client = await signed_in_client(paths)
    try:
        sent = await client.post("/api/chat/messages", json={"text": text})
        assert sent.status_code == 201, sent.text
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            listed = (await client.get("/api/chat/messages")).json()
            items = listed["messages"] if isinstance(listed, dict) else listed
            replies = [m["text"] for m in items if m.get("direction") == "out" and m.get("kind") == "text"]
            if replies:
                return str(replies[-1])
            await asyncio.sleep(0.3)
    finally:
        await client.aclose()
    raise AssertionError(f"no answer to {text!r}: {json.dumps(items)[:2000]}")
