"""With no usable secret store (no OS keyring, no passphrase), a model server that needs no key still answers: no key
means no store is needed. A key the upstream needs is still never guessed at or skipped."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest

from nanoclaw_app.secrets.store import SecretStore
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI
from tests.unit.gateway.conftest import CLAUDE, StartGateway

SAY: Any = [{"role": "user", "content": "hi"}]
NO_STORE = "no OS keyring works here and no passphrase is set"


async def test_a_local_server_answers_through_the_gateway_with_no_secret_store(
        start_gateway: StartGateway, fake_openai: FakeOpenAI) -> None:
    gw = await start_gateway(secrets=SecretStore(None, unavailable_reason=NO_STORE))
    gpt = await gw.openai(gw.grant())

    reply = await gpt.chat.completions.create(model="llama3.2", messages=SAY)

    assert reply.choices[0].message.content == "FAKE: hi"
    assert fake_openai.calls == [("POST", "/v1/chat/completions")]
    assert "authorization" not in fake_openai.headers[-1]


async def test_anthropic_and_openais_own_api_still_say_the_key_cannot_be_read(
        start_gateway: StartGateway, fake_anthropic: FakeAnthropic) -> None:
    gw = await start_gateway(secrets=SecretStore(None, unavailable_reason=NO_STORE),
                             openai_base_url="https://api.openai.com/v1")  # refused before anything leaves the host
    claude = await gw.anthropic(gw.grant())
    gpt = await gw.openai(gw.grant("sess-2"))

    with pytest.raises(anthropic.BadRequestError) as claude_error:
        await claude.messages.create(model=CLAUDE, max_tokens=5, messages=SAY)
    with pytest.raises(openai.BadRequestError) as gpt_error:
        await gpt.chat.completions.create(model="gpt-4o", messages=SAY)

    assert "cannot read your Anthropic API key" in claude_error.value.response.json()["error"]["message"]
    assert NO_STORE in claude_error.value.response.json()["error"]["message"]
    assert "cannot read your OpenAI API key" in gpt_error.value.response.json()["error"]["message"]
    assert fake_anthropic.calls == []
