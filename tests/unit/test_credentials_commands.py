"""``nanoclaw credentials ...`` with no NanoClaw running: the same service layer as the page, values by stdin only."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from keyring.backends import fail

from nanoclaw_app.cli import main
from tests.fakes.credential_echo import CredentialEcho
from tests.fakes.keyring import MemoryKeyring

TOKEN = "ghp_cli-credential-value-0123456789"


@pytest.fixture
def memory(monkeypatch: pytest.MonkeyPatch) -> MemoryKeyring:
    backend = MemoryKeyring()
    monkeypatch.setattr("nanoclaw_app.secrets.backend.keyring.get_keyring", lambda: backend)
    return backend


@pytest.fixture
def echo(tmp_path: Path) -> Iterator[CredentialEcho]:
    """The fake service on a loop of its own: the CLI runs its own ``asyncio.run``."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    fake = CredentialEcho(tmp_path / "echo", lambda r: r.headers.get("authorization") == f"Bearer {TOKEN}")
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result(10)
    yield fake
    asyncio.run_coroutine_threadsafe(fake.stop(), loop).result(10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def test_a_value_is_never_accepted_on_the_command_line(memory: MemoryKeyring) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["credentials", "add", "GitHub", "--host", "api.github.com", TOKEN])
    assert exit_info.value.code == 2
    assert memory.values == {}


def test_add_reads_the_value_from_stdin_and_list_never_shows_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, memory: MemoryKeyring
) -> None:
    _stdin(monkeypatch, TOKEN + "\n")
    assert main(["credentials", "add", "GitHub", "--host", "api.github.com", "--policy", "ask"]) == 0
    added = capsys.readouterr().out
    assert main(["credentials", "list"]) == 0
    listed = capsys.readouterr().out
    for words in ("GitHub", "api.github.com", "Ask each time", "set"):
        assert words in listed
    assert main(["credentials", "list", "--json"]) == 0
    as_json = capsys.readouterr().out
    [item] = json.loads(as_json)
    assert TOKEN not in added + listed + as_json
    assert list(memory.values.values()) == [TOKEN]
    assert item["secret"] == "set"


def test_edit_keeps_the_value_unless_a_new_one_is_asked_for(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, memory: MemoryKeyring
) -> None:
    _stdin(monkeypatch, TOKEN)
    assert main(["credentials", "add", "GitHub", "--host", "api.github.com"]) == 0
    assert main(["credentials", "edit", "github", "--kind", "header", "--field", "X-Api-Key", "--json"]) == 0
    capsys.readouterr()
    assert list(memory.values.values()) == [TOKEN]
    _stdin(monkeypatch, "ghp_replaced")
    assert main(["credentials", "edit", "GitHub", "--new-value", "--json"]) == 0
    [item] = json.loads(capsys.readouterr().out)
    assert item["how"] == "Header X-Api-Key"
    assert list(memory.values.values()) == ["ghp_replaced"]


def test_test_says_in_words_what_the_service_answered(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, memory: MemoryKeyring, echo: CredentialEcho
) -> None:
    assert main(["settings", "set", "agent_ca_certificates", str(echo.ca_file)]) == 0
    _stdin(monkeypatch, TOKEN)
    assert main(["credentials", "add", "Echo", "--host", f"127.0.0.1:{echo.port}"]) == 0
    capsys.readouterr()
    assert main(["credentials", "test", "Echo"]) == 0
    assert capsys.readouterr().out.strip() == "Echo answered 200 OK: the credential works"
    _stdin(monkeypatch, "ghp_wrong")
    assert main(["credentials", "edit", "Echo", "--new-value"]) == 0
    capsys.readouterr()
    assert main(["credentials", "test", "Echo"]) == 1
    assert "the service refused this credential" in capsys.readouterr().out


def test_remove_deletes_the_value_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, memory: MemoryKeyring
) -> None:
    _stdin(monkeypatch, TOKEN)
    assert main(["credentials", "add", "GitHub", "--host", "api.github.com"]) == 0
    assert main(["credentials", "remove", "GitHub"]) == 0
    assert "removed GitHub" in capsys.readouterr().out
    assert all(value is None for value in memory.values.values())
    assert main(["credentials", "remove", "GitHub"]) == 1
    assert "there is no credential 'GitHub'" in capsys.readouterr().err


def test_bad_input_and_a_closed_store_are_said_in_words(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("nanoclaw_app.secrets.backend.keyring.get_keyring", fail.Keyring)
    monkeypatch.delenv("NANOCLAW_SECRETS_PASSPHRASE", raising=False)
    _stdin(monkeypatch, TOKEN)
    assert main(["credentials", "add", "GitHub", "--host", "https://api.github.com/user"]) == 1
    assert "is not a host name" in capsys.readouterr().err
    _stdin(monkeypatch, TOKEN)
    assert main(["credentials", "add", "GitHub", "--host", "api.github.com"]) == 2
    assert "none is set up yet: choose where NanoClaw keeps keys in Settings" in capsys.readouterr().err
    assert main(["credentials", "add", "GitHub", "--host", "x.example", "--agents", "Nobody"]) == 1
    assert "no agent 'Nobody'" in capsys.readouterr().err
