"""`nanoclaw settings` and `nanoclaw secrets`: the same service layer as the Settings page, through the real CLI."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from keyring.backends import fail

from nanoclaw_app.cli import main
from nanoclaw_app.paths import Paths
from nanoclaw_app.secrets.encrypted_file import secrets_file
from tests.fakes.keyring import MemoryKeyring

VALUE = "sk-ant-api03-from-stdin-0123456789"
PASSPHRASE = "a long enough passphrase"


class Terminal(io.StringIO):
    """Stdin that claims to be a terminal, so the commands prompt (through getpass) instead of reading it."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def memory(monkeypatch: pytest.MonkeyPatch) -> MemoryKeyring:
    """A working OS keyring for the CLI process."""
    backend = MemoryKeyring()
    monkeypatch.setattr("nanoclaw_app.secrets.backend.keyring.get_keyring", lambda: backend)
    return backend


@pytest.fixture
def no_os_keyring(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("nanoclaw_app.secrets.backend.keyring.get_keyring", fail.Keyring)
    monkeypatch.delenv("NANOCLAW_SECRETS_PASSPHRASE", raising=False)


@pytest.fixture
def prompts(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Answers for getpass, in order; the test checks they were all used."""
    answers: list[str] = []
    monkeypatch.setattr("sys.stdin", Terminal())
    monkeypatch.setattr("getpass.getpass", lambda prompt="": answers.pop(0))
    yield answers
    assert answers == []


def _stdin(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def test_settings_show_lists_the_editable_settings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["settings", "show", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["lan_access"] is False
    assert shown["host"] == "127.0.0.1"
    assert shown["restart_needed"] == []
    assert main(["settings", "show"]) == 0
    out = capsys.readouterr().out
    assert "daily_spend_cap_usd" in out
    assert "lan_password" in out


def test_settings_set_saves_a_valid_value_and_explains_an_invalid_one(capsys: pytest.CaptureFixture[str],
                                                                     paths: Paths) -> None:
    assert main(["settings", "set", "daily_spend_cap_usd", "4.5"]) == 0
    assert json.loads(paths.settings_file.read_text())["daily_spend_cap_usd"] == 4.5
    capsys.readouterr()
    assert main(["settings", "set", "timezone", "Mars/Olympus"]) == 1
    err = capsys.readouterr().err
    assert "IANA name" in err
    assert "Traceback" not in err
    assert main(["settings", "set", "daily_spend_cap_usd", "lots"]) == 1
    assert "not a valid value" in capsys.readouterr().err


def test_turning_lan_access_on_reads_the_password_from_stdin(capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _stdin(monkeypatch, "correct horse battery\n")
    assert main(["settings", "set", "lan_access", "on", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["lan_access"] is True
    assert shown["host"] == "0.0.0.0"
    assert shown["lan_password_set"] is True
    assert main(["settings", "set", "lan_access", "off", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["host"] == "127.0.0.1"


def test_secrets_set_reads_the_value_from_stdin_and_never_prints_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, memory: MemoryKeyring
) -> None:
    _stdin(monkeypatch, VALUE + "\n")
    assert main(["secrets", "set", "anthropic_api_key", "--label", "Claude"]) == 0
    assert memory.values[("nanoclaw", "anthropic_api_key")] == VALUE
    assert main(["secrets", "list"]) == 0
    assert main(["secrets", "list", "--json"]) == 0
    assert main(["secrets", "status"]) == 0
    captured = capsys.readouterr()
    assert VALUE not in captured.out + captured.err
    assert "stored anthropic_api_key" in captured.out
    assert "Claude" in captured.out
    assert "MemoryKeyring" in captured.out

    assert main(["secrets", "delete", "anthropic_api_key"]) == 0
    assert ("nanoclaw", "anthropic_api_key") not in memory.values


def test_a_secret_value_is_never_accepted_on_the_command_line(capsys: pytest.CaptureFixture[str],
                                                              memory: MemoryKeyring) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["secrets", "set", "anthropic_api_key", VALUE])
    assert exit_info.value.code == 2
    assert memory.values == {}


def test_without_an_os_keyring_the_environment_passphrase_creates_an_encrypted_store(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, no_os_keyring: None, paths: Paths
) -> None:
    _stdin(monkeypatch, VALUE)
    assert main(["secrets", "set", "openai_api_key"]) == 2  # no passphrase anywhere, no terminal to ask on
    assert "set a passphrase in Settings" in capsys.readouterr().err

    monkeypatch.setenv("NANOCLAW_SECRETS_PASSPHRASE", PASSPHRASE)
    _stdin(monkeypatch, VALUE)
    assert main(["secrets", "set", "openai_api_key"]) == 0
    assert secrets_file(paths).exists()
    assert VALUE.encode() not in secrets_file(paths).read_bytes()
    assert main(["secrets", "status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.split("stored openai_api_key\n")[-1])["kind"] == "encrypted_file"


def test_on_a_terminal_the_passphrase_and_value_are_asked_for_hidden(
    capsys: pytest.CaptureFixture[str], no_os_keyring: None, prompts: list[str], paths: Paths
) -> None:
    prompts.extend([PASSPHRASE, PASSPHRASE, VALUE])  # new passphrase, again, the value
    assert main(["secrets", "set", "telegram_bot_token"]) == 0
    assert secrets_file(paths).exists()

    prompts.extend(["not the passphrase"])
    assert main(["secrets", "delete", "telegram_bot_token"]) == 2
    assert "wrong passphrase" in capsys.readouterr().err
    prompts.extend([PASSPHRASE])
    assert main(["secrets", "delete", "telegram_bot_token"]) == 0
