"""A locked or missing model key never reaches a chat as error text: messages wait, the owner is told once, and they
are answered as soon as the store is unlocked or the key saved. A store this computer unlocks by itself survives a
restart (a reboot) with nothing for the user to do."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import keyring
import pytest
from keyring.backends.fail import Keyring as FailKeyring

from nanoclaw_app.core.messages import InboundMessage
from nanoclaw_app.host import Host
from nanoclaw_app.secrets.encrypted_file import EncryptedFileKeyring, secrets_file
from nanoclaw_app.secrets.store import SERVICE, SecretStore
from nanoclaw_app.services import secrets
from nanoclaw_app.settings import Settings, load_settings
from tests.fakes.channel import FakeChannel
from tests.fakes.keyring import MemoryKeyring
from tests.fakes.runtime import InProcessRuntime
from tests.integration.seed import seed

PASSPHRASE = "correct horse battery"


@dataclass
class KeyedRuntime(InProcessRuntime):
    """The in-process runtime, but its agents count as calling the model with the user's key (as Podman's do)."""

    uses_model_keys: bool = True


@pytest.fixture
def fast_settings(settings: Settings) -> Settings:
    return load_settings(settings.paths, timezone="Europe/Berlin", port=0, sweep_interval_seconds=0.2,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2)


def dm(text: str, n: int) -> InboundMessage:
    return InboundMessage(channel_type="test", platform_id="owner", message_id=f"m{n}", sender_id="owner",
                          sender_name="Owner", text=text)


async def until(check: object, what: str, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():  # type: ignore[operator]
            await asyncio.sleep(0.05)


async def test_a_locked_store_holds_messages_tells_the_owner_once_and_answers_after_unlock(
    fast_settings: Settings, channel: FakeChannel
) -> None:
    # Made before a restart, with a passphrase, holding the key; this start has no passphrase to open it.
    store = EncryptedFileKeyring.create(secrets_file(fast_settings.paths), PASSPHRASE, n=2**14)
    store.set_password(SERVICE, "anthropic_api_key", "sk-ant-test")
    host = Host(fast_settings, runtime=KeyedRuntime(), adapters=[channel])
    await host.start()
    try:
        assert not host.secrets.available
        await seed(host.db)
        await channel.inject(dm("hello", 1))
        await until(lambda: len(channel.texts()) >= 1, "the owner's notice")
        await channel.inject(dm("are you there?", 2))
        await asyncio.sleep(1.0)  # several sweep passes: none may answer, and none may say it again
        [notice] = channel.texts()
        assert "locked" in notice
        assert "passphrase" in notice
        assert "Error" not in notice

        await secrets.unlock(host.services, PASSPHRASE)  # what the banner's form does
        await channel.wait_sent(3, timeout=20)
        assert channel.texts()[1:] == ["echo: hello", "echo: are you there?"]
    finally:
        await host.stop()


async def test_a_missing_key_is_said_once_and_the_message_is_answered_once_it_is_saved(
    fast_settings: Settings, channel: FakeChannel
) -> None:
    host = Host(fast_settings, runtime=KeyedRuntime(), adapters=[channel], secrets=SecretStore(MemoryKeyring()))
    await host.start()
    try:
        await seed(host.db)
        await channel.inject(dm("hello", 1))
        await until(lambda: len(channel.texts()) >= 1, "the owner's notice")
        await asyncio.sleep(0.6)
        [notice] = channel.texts()
        assert "no Anthropic API key is saved" in notice

        await secrets.put_secret(host.services, "anthropic_api_key", "sk-ant-test")
        await channel.wait_sent(2, timeout=20)
        assert channel.texts()[1] == "echo: hello"
    finally:
        await host.stop()


async def test_a_store_this_computer_unlocks_answers_after_a_restart_with_nothing_to_type(
    fast_settings: Settings, channel: FakeChannel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(keyring, "get_keyring", FailKeyring)  # a computer without an OS keyring
    host = Host(fast_settings, runtime=KeyedRuntime(), adapters=[channel])
    await host.start()
    try:
        assert not host.secrets.available  # no OS keyring in the tests
        await secrets.create_automatic(host.services)  # the wizard's default choice: no passphrase to pick
        await secrets.put_secret(host.services, "anthropic_api_key", "sk-ant-test")
    finally:
        await host.stop()

    again = Host(fast_settings, runtime=KeyedRuntime(), adapters=[channel])  # the reboot
    await again.start()
    try:
        assert again.secrets.available
        assert (await secrets.secret_status(again.services)).automatic in ("systemd-creds", "key file")
        await seed(again.db)
        await channel.inject(dm("good morning", 1))
        await channel.wait_sent(1, timeout=20)
        assert channel.texts() == ["echo: good morning"]
    finally:
        await again.stop()
