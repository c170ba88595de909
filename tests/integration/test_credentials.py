"""Credentials through the service layer over real SQLite and a real encrypted secret file: the value goes in once,
is used by the Test request exactly as the proxy would add it, and never comes back out."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from pathlib import Path

import pytest

from nanoclaw_app.core.events import Event
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import credentials as credentials_db
from nanoclaw_app.errors import ConfigError, NotFound, UserError
from nanoclaw_app.secrets.encrypted_file import EncryptedFileKeyring, secrets_file
from nanoclaw_app.secrets.store import SERVICE, SecretStore
from nanoclaw_app.services import credentials
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.services.credentials import CredentialInput
from nanoclaw_app.services.offline import offline_services
from nanoclaw_app.settings import Settings
from tests.fakes.credential_echo import CredentialEcho, Received

TOKEN = "ghp_credential-test-value-0123456789"
PASSPHRASE = "a long enough passphrase"


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[AppServices]:
    backend = EncryptedFileKeyring.create(secrets_file(settings.paths), PASSPHRASE, n=2**14)
    async with offline_services(settings, SecretStore(backend)) as made:
        yield made


@pytest.fixture
async def echo(tmp_path: Path) -> AsyncIterator[CredentialEcho]:
    fake = CredentialEcho(tmp_path / "echo", lambda r: r.headers.get("authorization") == f"Bearer {TOKEN}")
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


def spec(**changes: object) -> CredentialInput:
    base = CredentialInput(name="GitHub", host_pattern="api.github.com")
    return CredentialInput(**{**asdict(base), **changes})


async def test_the_value_is_kept_encrypted_and_no_view_or_event_carries_it(
    services: AppServices, settings: Settings
) -> None:
    async with services.ctx.events.subscribe() as queue:
        added = await credentials.add(services, spec(host_pattern="HTTPS://API.GitHub.com/"), TOKEN)
        event: Event = queue.get_nowait()
    assert (added.name, added.host_pattern, added.how, added.secret) == (
        "GitHub", "api.github.com", "Bearer token", "set")
    assert event.kind == "credentials.changed"
    assert TOKEN not in json.dumps(event.data)
    assert TOKEN not in json.dumps([asdict(v) for v in await credentials.list_credentials(services)])
    file = secrets_file(settings.paths)
    assert TOKEN.encode() not in file.read_bytes()
    reopened = EncryptedFileKeyring.unlock(file, PASSPHRASE)
    assert reopened.get_password(SERVICE, credentials_db.secret_name(added.id)) == TOKEN
    row = await credentials_db.get(services.ctx.db, added.id)
    assert row is not None
    assert TOKEN not in repr(row)


async def test_edit_without_a_value_keeps_it_and_remove_deletes_it(services: AppServices) -> None:
    added = await credentials.add(services, spec(), TOKEN)
    name = credentials_db.secret_name(added.id)
    edited = await credentials.edit(services, "github", spec(name="GitHub work", policy="ask_once"), "")
    assert (edited.name, edited.policy_words, edited.secret) == ("GitHub work", "Ask once per conversation", "set")
    assert await services.secrets.get(name) == TOKEN
    await credentials.edit(services, added.id, spec(name="GitHub work"), "ghp_new-value")
    assert await services.secrets.get(name) == "ghp_new-value"
    await credentials.remove(services, "GitHub work")
    assert await credentials.list_credentials(services) == []
    assert EncryptedFileKeyring.unlock(secrets_file(services.settings.paths), PASSPHRASE).get_password(
        SERVICE, name) is None
    with pytest.raises(NotFound):
        await credentials.remove(services, added.id)


async def test_agents_are_all_or_existing_ones(services: AppServices) -> None:
    agent = await agents_db.create(services.ctx.db, "Nano")
    chosen = await credentials.add(services, spec(agents=[agent.id]), TOKEN)
    assert not chosen.all_agents
    assert [a.name for a in chosen.agents] == ["Nano"]
    row = await credentials_db.get(services.ctx.db, chosen.id)
    assert row is not None
    assert row.agents == (agent.id,)
    assert row.applies_to(agent.id)
    assert not row.applies_to("ag-other")
    with pytest.raises(NotFound, match="no agent"):
        await credentials.add(services, spec(name="Other", agents=["ag-gone"]), TOKEN)
    with pytest.raises(UserError, match="at least one agent"):
        await credentials.add(services, spec(name="Other", agents=[]), TOKEN)


@pytest.mark.parametrize(("changes", "value", "words"), [
    ({"name": "  "}, TOKEN, "give the credential a name"),
    ({"host_pattern": "https://api.github.com/user"}, TOKEN, "not a host name"),
    ({"host_pattern": "*.com"}, TOKEN, "would match too much"),
    ({"kind": "cookie"}, TOKEN, "choose how it is added"),
    ({"kind": "header", "field": "X Api"}, TOKEN, "name the header"),
    ({"kind": "header", "field": "Content-Length"}, TOKEN, "cannot go there"),
    ({"kind": "query", "field": ""}, TOKEN, "name the query parameter"),
    ({"policy": "sometimes"}, TOKEN, "choose when it may be used"),
    ({"test_url": "http://api.github.com/user"}, TOKEN, "must start with https://"),
    ({"test_url": "https://evil.example/user"}, TOKEN, "must be on api.github.com"),
    ({}, "   ", "paste the value"),
    ({}, "ghp_one\r\nX-Other: two", "line break"),
    ({"kind": "basic"}, "no-colon", "user:password"),
])
async def test_bad_input_is_refused_with_a_sentence_and_nothing_is_stored(
    services: AppServices, changes: dict[str, object], value: str, words: str
) -> None:
    with pytest.raises(UserError, match=words):
        await credentials.add(services, spec(**changes), value)
    assert await credentials_db.list_all(services.ctx.db) == []


async def test_names_are_unique_whatever_their_case(services: AppServices) -> None:
    await credentials.add(services, spec(), TOKEN)
    with pytest.raises(UserError, match="exists already"):
        await credentials.add(services, spec(name="GITHUB"), TOKEN)


async def test_a_locked_store_is_said_in_words_and_nothing_is_added(services: AppServices) -> None:
    services.secrets.set_backend(None, "locked for the test")
    with pytest.raises(ConfigError, match="locked: unlock it with your passphrase"):
        await credentials.add(services, spec(), TOKEN)
    assert await credentials_db.list_all(services.ctx.db) == []
    state = await credentials.store_state(services)
    assert (state.ready, state.fix) == (False, "unlock")


async def test_the_test_request_carries_the_credential_to_its_host_only(
    services: AppServices, echo: CredentialEcho
) -> None:
    pattern = f"127.0.0.1:{echo.port}"
    good = await credentials.add(services, spec(host_pattern=pattern, test_url=f"{echo.url}/user?page=1"), TOKEN)
    result = await credentials.run_test(services, good.id, ca_files=[str(echo.ca_file)])
    assert result.ok
    assert result.message == "GitHub answered 200 OK: the credential works"
    assert echo.received[-1].target == "/user?page=1"

    await credentials.edit(services, good.id, spec(host_pattern=pattern), "ghp_revoked")
    refused = await credentials.run_test(services, good.id, ca_files=[str(echo.ca_file)])
    assert (refused.ok, refused.status_code) == (False, 401)
    assert "the service refused this credential" in refused.message
    assert echo.received[-1].target == "/"

    await credentials.edit(services, good.id, spec(host_pattern=pattern, test_url=f"{echo.url}/moved"), "")
    moved = await credentials.run_test(services, good.id, ca_files=[str(echo.ca_file)])
    assert moved.status_code == 302
    assert "credential was not checked" in moved.message  # and nobody followed it to elsewhere.invalid

    untrusted = await credentials.run_test(services, good.id, ca_files=[])
    assert not untrusted.ok
    assert "could not reach 127.0.0.1" in untrusted.message
    assert "certificate" in untrusted.message


async def test_a_header_or_query_credential_replaces_what_was_there(
    services: AppServices, echo: CredentialEcho
) -> None:
    pattern = f"127.0.0.1:{echo.port}"
    header = await credentials.add(services, spec(name="Keyed", host_pattern=pattern, kind="header",
                                                 field="X-Api-Key"), TOKEN)
    await credentials.run_test(services, header.id, ca_files=[str(echo.ca_file)])
    assert echo.received[-1].headers["x-api-key"] == TOKEN
    query = await credentials.add(services, spec(name="Queried", host_pattern=pattern, kind="query", field="key",
                                                test_url=f"{echo.url}/v1?key=placeholder&q=1"), TOKEN)
    await credentials.run_test(services, query.id, ca_files=[str(echo.ca_file)])
    received: Received = echo.received[-1]
    assert received.target == f"/v1?q=1&key={TOKEN}"


async def test_nothing_listens_is_said_as_could_not_reach(services: AppServices, echo: CredentialEcho) -> None:
    await echo.stop()
    added = await credentials.add(services, spec(host_pattern=f"127.0.0.1:{echo.port}"), TOKEN)
    result = await credentials.run_test(services, added.id, ca_files=[str(echo.ca_file)])
    assert not result.ok
    assert result.message.startswith("could not reach 127.0.0.1")


async def test_a_wildcard_without_a_test_address_asks_for_one(services: AppServices) -> None:
    added = await credentials.add(services, spec(host_pattern="*.github.com"), TOKEN)
    with pytest.raises(UserError, match="add a test address"):
        await credentials.run_test(services, added.id)


async def test_ask_once_grants_last_per_conversation_and_end_with_an_edit(services: AppServices) -> None:
    added = await credentials.add(services, spec(policy="ask_once"), TOKEN)
    db = services.ctx.db
    assert not await credentials_db.has_grant(db, added.id, "sess-1")
    await credentials_db.add_grant(db, added.id, "sess-1", "telegram:1")
    await credentials_db.add_grant(db, added.id, "sess-1", "telegram:2")
    assert await credentials_db.has_grant(db, added.id, "sess-1")
    assert not await credentials_db.has_grant(db, added.id, "sess-2")
    await credentials.edit(services, added.id, spec(policy="ask_once", host_pattern="api.github.com:8443"), "")
    assert not await credentials_db.has_grant(db, added.id, "sess-1")


async def test_a_damaged_agents_value_means_no_agent(services: AppServices) -> None:
    added = await credentials.add(services, spec(), TOKEN)
    await services.ctx.db.execute("UPDATE credentials SET agents_json = '{\"x\": 1}' WHERE id = ?", (added.id,))
    row = await credentials_db.get(services.ctx.db, added.id)
    assert row is not None
    assert row.agents == ()
    assert not row.applies_to("ag-any")
