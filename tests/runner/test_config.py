"""The runner's gateway settings, read from the environment the host gives the container."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_runner.config import load_config


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("GATEWAY_SOCKET", "MODEL_MAX_RETRIES", "MODEL_BASE_URL", "MODEL_TOKEN"):
        monkeypatch.delenv(f"NANOCLAW_{name}", raising=False)


def test_the_gateway_socket_and_retries_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NANOCLAW_GATEWAY_SOCKET", "/run/nanoclaw/gateway.sock")
    monkeypatch.setenv("NANOCLAW_MODEL_MAX_RETRIES", "0")
    monkeypatch.setenv("NANOCLAW_MODEL_BASE_URL", "http://gateway/anthropic")
    monkeypatch.setenv("NANOCLAW_MODEL_TOKEN", "tok-1")

    config = load_config([])

    assert config.gateway_socket == Path("/run/nanoclaw/gateway.sock")
    assert config.model_max_retries == 0
    assert (config.base_url, config.api_key) == ("http://gateway/anthropic", "tok-1")


def test_without_a_socket_the_base_url_is_plain_tcp_and_retries_default_to_two() -> None:
    config = load_config([])

    assert config.gateway_socket is None
    assert config.model_max_retries == 2


def test_an_empty_socket_variable_means_no_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NANOCLAW_GATEWAY_SOCKET", "")

    assert load_config([]).gateway_socket is None


@pytest.mark.parametrize("value", ["two", "-1"])
def test_a_bad_retry_count_stops_the_runner_at_start(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("NANOCLAW_MODEL_MAX_RETRIES", value)

    with pytest.raises(ValueError):
        load_config([])
