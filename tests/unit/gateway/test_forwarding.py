"""The real SDKs talk to the fake APIs through the gateway: keys are swapped in, tokens never leave, replies arrive."""

from __future__ import annotations

import json

import pytest

from nanoclaw_app.secrets.store import SecretStore
from tests.fakes.anthropic_server import Fail, FakeAnthropic
from tests.fakes.openai_server import FakeOpenAI
from tests.unit.gateway.conftest import CLAUDE, GPT, REAL_ANTHROPIC_KEY, REAL_OPENAI_KEY, StartGateway
from tests.unit.gateway.scripted import ScriptedUpstream


def no_token_in(headers: dict[str, str], token: str) -> bool:
    return all(token not in value for value in headers.values())


async def test_anthropic_sdk_reply_comes_back_and_upstream_sees_only_the_real_key(
        start_gateway: StartGateway, fake_anthropic: FakeAnthropic, transport: str) -> None:
    gw = await start_gateway(transport=transport)
    token = gw.grant()
    client = await gw.anthropic(token)

    message = await client.messages.create(model=CLAUDE, max_tokens=50,
                                           messages=[{"role": "user", "content": "hello there"}])

    assert message.content[0].type == "text"
    assert message.content[0].text == "FAKE: hello there"
    seen = fake_anthropic.headers[-1]
    assert seen["x-api-key"] == REAL_ANTHROPIC_KEY
    assert "authorization" not in seen
    assert no_token_in(seen, token)


async def test_anthropic_sdk_streams_through_the_gateway(
        start_gateway: StartGateway, fake_anthropic: FakeAnthropic, transport: str) -> None:
    gw = await start_gateway(transport=transport)
    client = await gw.anthropic(gw.grant())

    async with client.messages.stream(model=CLAUDE, max_tokens=50,
                                      messages=[{"role": "user", "content": "stream me"}]) as stream:
        deltas = [text async for text in stream.text_stream]
        final = await stream.get_final_message()

    assert "".join(deltas) == "FAKE: stream me"
    assert len(deltas) >= 2
    assert final.usage.output_tokens == 13
    assert fake_anthropic.headers[-1]["x-api-key"] == REAL_ANTHROPIC_KEY


async def test_openai_sdk_reply_and_stream_come_back_with_the_real_key_upstream(
        start_gateway: StartGateway, fake_openai: FakeOpenAI, transport: str) -> None:
    gw = await start_gateway(transport=transport)
    token = gw.grant()
    client = await gw.openai(token)

    completion = await client.chat.completions.create(model=GPT, messages=[{"role": "user", "content": "hi"}])
    stream = await client.chat.completions.create(model=GPT, messages=[{"role": "user", "content": "again"}],
                                                  stream=True, stream_options={"include_usage": True})
    pieces = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]

    assert completion.choices[0].message.content == "FAKE: hi"
    assert "".join(pieces) == "FAKE: again"
    for seen in fake_openai.headers:
        assert seen["authorization"] == f"Bearer {REAL_OPENAI_KEY}"
        assert no_token_in(seen, token)


async def test_openai_compatible_local_server_without_a_key_gets_no_authorization(
        start_gateway: StartGateway, fake_openai: FakeOpenAI, secret_store: SecretStore) -> None:
    await secret_store.delete("openai_api_key")
    gw = await start_gateway()
    token = gw.grant()
    client = await gw.openai(token)

    completion = await client.chat.completions.create(model="llama3.2", messages=[{"role": "user", "content": "x"}])

    assert completion.choices[0].message.content == "FAKE: x"
    assert "authorization" not in fake_openai.headers[-1]
    assert no_token_in(fake_openai.headers[-1], token)


async def test_container_never_sees_the_key_in_replies_or_upstream_errors(
        start_gateway: StartGateway, fake_anthropic: FakeAnthropic) -> None:
    gw = await start_gateway()
    http = await gw.http()
    token = gw.grant()
    fake_anthropic.script(Fail(401, "invalid x-api-key"))
    request = {"model": CLAUDE, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}

    refused = await http.post("/anthropic/v1/messages", json=request, headers={"x-api-key": token})
    answered = await http.post("/anthropic/v1/messages", json=request, headers={"x-api-key": token})

    assert refused.status_code == 401
    assert refused.json()["error"]["message"] == "invalid x-api-key"
    assert answered.status_code == 200
    for response in (refused, answered):
        assert REAL_ANTHROPIC_KEY not in response.text
        assert all(REAL_ANTHROPIC_KEY not in value for value in response.headers.values())


async def test_method_path_query_and_body_reach_the_upstream_unchanged(start_gateway: StartGateway) -> None:
    upstream = ScriptedUpstream(reply=[b'{"data": []}'], content_type="application/json")
    await upstream.start()
    try:
        gw = await start_gateway(openai_base_url=upstream.url + "/v1")
        http = await gw.http()
        token = gw.grant()

        listed = await http.get("/openai/models?limit=2&after=m%2F1", headers={"authorization": f"Bearer {token}"})
        posted = await http.post("/openai/chat/completions?api-version=1", headers={"authorization": f"Bearer {token}"},
                                 content=b'{"why": "tidy"}')
    finally:
        await upstream.stop()

    assert listed.status_code == posted.status_code == 200
    assert listed.json() == {"data": []}
    first, second = upstream.requests
    assert (first.method, first.path_qs) == ("GET", "/v1/models?limit=2&after=m%2F1")
    assert (second.method, second.path_qs, second.body) == ("POST", "/v1/chat/completions?api-version=1",
                                                            b'{"why": "tidy"}')
    assert second.headers["authorization"] == f"Bearer {REAL_OPENAI_KEY}"


async def test_bearer_token_works_for_anthropic_like_the_claude_cli_auth_token(
        start_gateway: StartGateway, fake_anthropic: FakeAnthropic) -> None:
    gw = await start_gateway()
    http = await gw.http()
    token = gw.grant()

    response = await http.post(
        "/anthropic/v1/messages", headers={"authorization": f"Bearer {token}", "anthropic-version": "2023-06-01"},
        content=json.dumps({"model": CLAUDE, "max_tokens": 5, "messages": [{"role": "user", "content": "cli"}]}),
    )

    assert response.status_code == 200
    assert response.json()["content"][0]["text"] == "FAKE: cli"
    seen = fake_anthropic.headers[-1]
    assert seen["x-api-key"] == REAL_ANTHROPIC_KEY
    assert "authorization" not in seen
    assert seen["anthropic-version"] == "2023-06-01"


@pytest.mark.parametrize("path", ["/anthropicx/v1/messages", "/other/v1/messages"])
async def test_paths_outside_the_two_apis_are_not_forwarded(
        start_gateway: StartGateway, fake_anthropic: FakeAnthropic, path: str) -> None:
    gw = await start_gateway()
    http = await gw.http()

    response = await http.post(path, headers={"x-api-key": gw.grant()}, json={})

    assert response.status_code == 404
    assert fake_anthropic.calls == []
