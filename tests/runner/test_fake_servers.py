"""The fake model servers speak the real APIs: the official SDKs parse their answers, streaming and not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anthropic
import openai
import pytest
from anthropic.types import MessageParam
from openai.types.chat import ChatCompletionMessageParam

from tests.fakes import anthropic_server as fa
from tests.fakes import openai_server as fo


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[fa.FakeAnthropic]:
    fake = fa.FakeAnthropic()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def fake_openai() -> AsyncIterator[fo.FakeOpenAI]:
    fake = fo.FakeOpenAI()
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def anthropic_client(fake_anthropic: fa.FakeAnthropic) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=fake_anthropic.url, api_key="sk-test", max_retries=0)
    try:
        yield client
    finally:
        await client.close()


@pytest.fixture
async def openai_client(fake_openai: fo.FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=fake_openai.v1_url, api_key="sk-test", max_retries=0)
    try:
        yield client
    finally:
        await client.close()


USER_HI: list[MessageParam] = [{"role": "user", "content": "hi there"}]
OPENAI_HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi there"}]


# -- Anthropic -----------------------------------------------------------------------------------------------------


async def test_anthropic_default_reply_echoes_the_user_with_usage(
    fake_anthropic: fa.FakeAnthropic, anthropic_client: anthropic.AsyncAnthropic
) -> None:
    message = await anthropic_client.messages.create(model="m1", max_tokens=50, messages=USER_HI)
    assert message.content[0].type == "text"
    assert message.content[0].text == "FAKE: hi there"
    assert message.stop_reason == "end_turn"
    assert message.model == "m1"
    assert message.usage.input_tokens == 21
    assert message.usage.output_tokens == 13
    assert message.usage.cache_read_input_tokens == 5
    assert message.usage.cache_creation_input_tokens == 3
    assert fake_anthropic.requests[0]["messages"] == USER_HI
    assert fake_anthropic.headers[0]["authorization"] == "Bearer sk-test"


async def test_anthropic_stream_carries_text_and_a_tool_call(
    fake_anthropic: fa.FakeAnthropic, anthropic_client: anthropic.AsyncAnthropic
) -> None:
    fake_anthropic.script([fa.Text("Looking it up."), fa.ToolUse("lookup", {"key": "alpha", "n": [1, 2]}, id="tu_1")])
    kinds: list[str] = []
    async with anthropic_client.messages.stream(model="m", max_tokens=50, messages=USER_HI) as stream:
        async for event in stream:
            kinds.append(event.type)
        final = await stream.get_final_message()
    assert kinds.count("text") >= 2
    assert "input_json" in kinds
    assert kinds[-1] == "message_stop"
    assert final.stop_reason == "tool_use"
    text, call = final.content
    assert text.type == "text"
    assert text.text == "Looking it up."
    assert call.type == "tool_use"
    assert (call.id, call.name, call.input) == ("tu_1", "lookup", {"key": "alpha", "n": [1, 2]})
    assert final.usage.output_tokens == 13
    assert final.usage.cache_read_input_tokens == 5
    assert fake_anthropic.requests[0]["stream"] is True


async def test_anthropic_default_reply_mentions_a_tool_result(
    fake_anthropic: fa.FakeAnthropic, anthropic_client: anthropic.AsyncAnthropic
) -> None:
    messages: list[MessageParam] = [
        {"role": "user", "content": "get it"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "lookup", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "secret=42"}]},
    ]
    message = await anthropic_client.messages.create(model="m", max_tokens=50, messages=messages)
    assert message.content[0].type == "text"
    assert "secret=42" in message.content[0].text


async def test_anthropic_scripted_replies_come_first_then_the_responder() -> None:
    fake = fa.FakeAnthropic(responder=lambda body: fa.Text(f"responder saw {len(body['messages'])}"))
    await fake.start()
    client = anthropic.AsyncAnthropic(base_url=fake.url, api_key="k", max_retries=0)
    try:
        fake.script(fa.Text("first"), fa.Text("second"))
        answers = []
        for _ in range(3):
            message = await client.messages.create(model="m", max_tokens=5, messages=USER_HI)
            assert message.content[0].type == "text"
            answers.append(message.content[0].text)
    finally:
        await client.close()
        await fake.stop()
    assert answers == ["first", "second", "responder saw 1"]
    assert len(fake.requests) == 3


async def test_anthropic_failure_is_an_api_error_in_the_sdk(
    fake_anthropic: fa.FakeAnthropic, anthropic_client: anthropic.AsyncAnthropic
) -> None:
    fake_anthropic.script(fa.Fail(401, "invalid x-api-key"))
    with pytest.raises(anthropic.AuthenticationError) as caught:
        await anthropic_client.messages.create(model="m", max_tokens=5, messages=USER_HI)
    assert caught.value.status_code == 401
    assert "invalid x-api-key" in str(caught.value)
    fake_anthropic.script(fa.Fail(500, "boom"))
    with pytest.raises(anthropic.InternalServerError):
        await anthropic_client.messages.create(model="m", max_tokens=5, messages=USER_HI)


async def test_anthropic_count_tokens_and_unknown_paths_are_visible(
    fake_anthropic: fa.FakeAnthropic, anthropic_client: anthropic.AsyncAnthropic
) -> None:
    counted = await anthropic_client.messages.count_tokens(model="m", messages=USER_HI)
    assert counted.input_tokens > 0
    with pytest.raises(anthropic.NotFoundError):
        await anthropic_client.models.list()
    assert ("POST", "/v1/messages/count_tokens") in fake_anthropic.calls
    assert fake_anthropic.not_found == ["/v1/models"]
    assert fake_anthropic.requests == []  # only model calls are recorded as requests


async def test_anthropic_stop_wakes_a_held_request(fake_anthropic: fa.FakeAnthropic) -> None:
    client = anthropic.AsyncAnthropic(base_url=fake_anthropic.url, api_key="k", max_retries=0)
    fake_anthropic.script(fa.Hang())
    call = asyncio.create_task(client.messages.create(model="m", max_tokens=5, messages=USER_HI))
    try:
        await fake_anthropic.wait_for_requests(1)
        assert not call.done()
        await fake_anthropic.stop()
        with pytest.raises(anthropic.APIStatusError):
            await call
    finally:
        await client.close()


async def test_anthropic_release_lets_a_held_request_answer(
    fake_anthropic: fa.FakeAnthropic, anthropic_client: anthropic.AsyncAnthropic
) -> None:
    fake_anthropic.script(fa.Hang(then=fa.Text("late")))
    call = asyncio.create_task(anthropic_client.messages.create(model="m", max_tokens=5, messages=USER_HI))
    await fake_anthropic.wait_for_requests(1)
    fake_anthropic.release()
    message = await call
    assert message.content[0].type == "text"
    assert message.content[0].text == "late"


# -- OpenAI --------------------------------------------------------------------------------------------------------


async def test_openai_default_reply_echoes_the_user_with_usage(
    fake_openai: fo.FakeOpenAI, openai_client: openai.AsyncOpenAI
) -> None:
    completion = await openai_client.chat.completions.create(model="m1", messages=OPENAI_HI)
    choice = completion.choices[0]
    assert choice.message.content == "FAKE: hi there"
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (26, 13)
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 5
    assert fake_openai.requests[0]["model"] == "m1"
    assert fake_openai.headers[0]["authorization"] == "Bearer sk-test"


async def test_openai_stream_splits_tool_calls_across_chunks_and_ends_with_usage(
    fake_openai: fo.FakeOpenAI, openai_client: openai.AsyncOpenAI
) -> None:
    fake_openai.script([fo.Text("Let me see."), fo.ToolCall("lookup", {"key": "alpha"}), fo.ToolCall("other", {})])
    stream = await openai_client.chat.completions.create(
        model="m",
        messages=OPENAI_HI,
        stream=True,
        stream_options={"include_usage": True},
    )
    text = ""
    calls: dict[int, dict[str, str]] = {}
    finish = None
    usage = None
    pieces = 0
    async with stream:
        async for chunk in stream:
            usage = chunk.usage or usage
            for choice in chunk.choices:
                finish = choice.finish_reason or finish
                text += choice.delta.content or ""
                for part in choice.delta.tool_calls or []:
                    pieces += 1
                    slot = calls.setdefault(part.index, {"id": "", "name": "", "arguments": ""})
                    slot["id"] = part.id or slot["id"]
                    assert part.function is not None
                    slot["name"] += part.function.name or ""
                    slot["arguments"] += part.function.arguments or ""
    assert text == "Let me see."
    assert finish == "tool_calls"
    assert pieces > len(calls)  # arguments really arrive in several chunks
    assert [c["name"] for c in calls.values()] == ["lookup", "other"]
    assert calls[0]["arguments"] == '{"key": "alpha"}'
    assert all(c["id"] for c in calls.values())
    assert usage is not None
    assert usage.completion_tokens == 13


async def test_openai_stream_has_no_usage_unless_asked(
    fake_openai: fo.FakeOpenAI, openai_client: openai.AsyncOpenAI
) -> None:
    stream = await openai_client.chat.completions.create(model="m", messages=OPENAI_HI, stream=True)
    usages = []
    text = ""
    async with stream:
        async for chunk in stream:
            usages.append(chunk.usage)
            text += "".join(c.delta.content or "" for c in chunk.choices)
    assert text == "FAKE: hi there"
    assert usages
    assert all(u is None for u in usages)


async def test_openai_default_reply_mentions_tool_results(
    fake_openai: fo.FakeOpenAI, openai_client: openai.AsyncOpenAI
) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "get it"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "secret=42"},
    ]
    completion = await openai_client.chat.completions.create(model="m", messages=messages)
    assert "secret=42" in (completion.choices[0].message.content or "")


async def test_openai_failure_and_model_list(fake_openai: fo.FakeOpenAI, openai_client: openai.AsyncOpenAI) -> None:
    fake_openai.script(fo.Fail(401, "bad key"))
    with pytest.raises(openai.AuthenticationError) as caught:
        await openai_client.chat.completions.create(model="m", messages=OPENAI_HI)
    assert "bad key" in str(caught.value)
    models = await openai_client.models.list()
    assert [m.id for m in models.data] == ["fake-model"]
    with pytest.raises(openai.NotFoundError):
        await openai_client.embeddings.create(model="m", input="x")
    assert fake_openai.not_found == ["/v1/embeddings"]
