"""``nanoclaw channels ...``: the phone channels from a terminal; while NanoClaw runs, the commands go to it."""

from __future__ import annotations

import asyncio
import io
import json
import re
from collections.abc import AsyncIterator

import pytest

from nanoclaw_app.channels import registry as channel_registry
from nanoclaw_app.cli import main
from nanoclaw_app.host import Host
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.settings import Settings, load_settings
from tests.fakes.keyring import MemoryKeyring
from tests.fakes.runtime import InProcessRuntime
from tests.fakes.telegram_api import ANN, BOT_USERNAME, TOKEN, FakeBotApi


@pytest.fixture
def memory(monkeypatch: pytest.MonkeyPatch) -> MemoryKeyring:
    """A working OS keyring for the CLI process."""
    backend = MemoryKeyring()
    monkeypatch.setattr("nanoclaw_app.secrets.backend.keyring.get_keyring", lambda: backend)
    return backend


@pytest.fixture
async def bot_api(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi() as fake:
        monkeypatch.setenv("NANOCLAW_TELEGRAM_API_BASE_URL", fake.base_url)
        yield fake


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def test_the_listing_without_nanoclaw_running_shows_both_channels(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["channels", "list"]) == 0
    captured = capsys.readouterr()
    assert re.search(r"whatsapp\s+not set up", captured.out)
    assert re.search(r"telegram\s+not set up", captured.out)
    assert "NanoClaw is not running" in captured.err
    assert main(["channels", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(c["name"], c["running"]) for c in listed][:2] == [("whatsapp", False), ("telegram", False)]


def test_what_needs_the_live_link_asks_to_start_nanoclaw(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["channels", "pair", "telegram"]) == 2
    assert "NanoClaw is not running: start it" in capsys.readouterr().err
    assert main(["channels", "on", "whatsapp"]) == 2
    assert "NanoClaw is not running: start it" in capsys.readouterr().err


def test_the_token_is_never_taken_from_the_command_line(memory: MemoryKeyring) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["channels", "token", "telegram", TOKEN])
    assert exit_info.value.code == 2
    assert memory.values == {}


async def test_a_token_from_stdin_is_checked_and_kept_so_telegram_starts_with_nanoclaw(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, memory: MemoryKeyring, bot_api: FakeBotApi
) -> None:
    _stdin(monkeypatch, "not a token\n")
    assert await asyncio.to_thread(main, ["channels", "token", "telegram"]) == 1
    assert "does not look like a bot token" in capsys.readouterr().err
    assert bot_api.calls == []

    _stdin(monkeypatch, TOKEN + "\n")
    assert await asyncio.to_thread(main, ["channels", "token", "telegram"]) == 0
    captured = capsys.readouterr()
    assert f"Telegram bot @{BOT_USERNAME} (Nano) checked and saved" in captured.out
    assert "Telegram connects when it starts" in captured.out
    assert "/setprivacy" in captured.out
    assert TOKEN not in captured.out + captured.err
    assert memory.values[("nanoclaw", "telegram.bot_token")] == TOKEN

    assert await asyncio.to_thread(main, ["channels", "list"]) == 0
    assert re.search(r"telegram\s+off\s+.*it starts with NanoClaw", capsys.readouterr().out)
    assert await asyncio.to_thread(main, ["channels", "off", "telegram", "--forget"]) == 0
    assert capsys.readouterr().out.strip() == "Telegram: not set up"
    assert ("nanoclaw", "telegram.bot_token") not in memory.values


@pytest.fixture
async def running(settings: Settings, bot_api: FakeBotApi) -> AsyncIterator[Host]:
    fast = load_settings(settings.paths, timezone="Europe/Berlin", port=0, sweep_interval_seconds=0.2,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2, runtime="local",
                         telegram_api_base_url=bot_api.base_url)
    host = Host(fast, runtime=InProcessRuntime(), secrets=SecretStore(MemoryKeyring()))
    await host.start()
    try:
        yield host
    finally:
        await host.stop()


async def test_with_nanoclaw_running_the_commands_set_up_and_pair_telegram_there(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, running: Host, bot_api: FakeBotApi
) -> None:
    _stdin(monkeypatch, TOKEN)
    assert await asyncio.to_thread(main, ["channels", "token", "telegram", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert (result["bot"]["username"], result["started"]) == (BOT_USERNAME, True)
    assert running.channels.get("telegram") is not None  # the running NanoClaw started it

    assert await asyncio.to_thread(main, ["channels", "pair", "telegram"]) == 0
    out = capsys.readouterr().out
    found = re.search(rf"Send (\d{{4}}) to @{BOT_USERNAME} from your Telegram account", out)
    assert found is not None, out
    async with running.events.subscribe() as events:
        bot_api.push_message(found.group(1), user=ANN)
        while (await asyncio.wait_for(events.get(), 15)).kind != "channel.paired":
            pass

    assert await asyncio.to_thread(main, ["channels", "list"]) == 0
    listing = capsys.readouterr().out
    assert re.search(rf"telegram\s+connected\s+@{BOT_USERNAME}\s+.*Ann Koch \(no agent\)", listing)

    assert await asyncio.to_thread(main, ["channels", "off", "telegram"]) == 0
    assert capsys.readouterr().out.strip() == "Telegram: off"
    assert running.channels.get("telegram") is None
    assert not await channel_registry.is_enabled(running.db, "telegram")
    assert await running.db.fetchval("SELECT COUNT(*) FROM web_sessions") == 0  # every command signed out again
