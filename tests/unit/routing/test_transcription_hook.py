"""The router's transcription hook: a voice note is put into words once per message, past the access gate, before any
agent's session stores it; a stranger's audio is never sent for transcription.
"""

from __future__ import annotations

import json
from dataclasses import replace

from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.messages import InboundMessage, IncomingAttachment
from nanoclaw_app.core.router import Router
from tests.unit.routing.helpers import agent, chat_with, inbound, member, rows_of

VOICE = IncomingAttachment("voice-1.ogg", b"OggS voice", "audio/ogg", "voice")


class CountingTranscriber:
    """Stands in for the voice-note service: records each call and prepends a line."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    async def transcribe(self, msg: InboundMessage, agent_group_id: str) -> InboundMessage:
        self.calls.append((msg.message_id, agent_group_id))
        return replace(msg, text="[voice note, 0:03] hello from the car")


async def test_a_voice_note_is_transcribed_once_for_every_agent_that_takes_it(ctx: CoreContext,
                                                                              router: Router) -> None:
    first, second = await agent(ctx, "First"), await agent(ctx, "Second")
    await chat_with(ctx, [first, second], platform_id="grp", group=True)
    await member(ctx, "alice", first, second)
    transcriber = CountingTranscriber()
    ctx.transcriber = transcriber

    result = await router.route(inbound("", chat="grp", group=True, mention=True, attachments=(VOICE,)))

    assert len(result.delivered) == 2
    assert len(transcriber.calls) == 1
    for outcome in result.delivered:
        [row] = await rows_of(ctx, outcome.session_id or "")
        content = json.loads(row["content"])
        assert content["text"] == "[voice note, 0:03] hello from the car"
        assert [a["name"] for a in content["attachments"]] == ["voice-1.ogg"]  # the recording still arrives


async def test_a_strangers_voice_note_is_not_sent_for_transcription(ctx: CoreContext, router: Router) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], platform_id="dm", policy="request_approval")
    transcriber = CountingTranscriber()
    ctx.transcriber = transcriber

    result = await router.route(inbound("", chat="dm", sender="mallory", attachments=(VOICE,)))

    assert result.dropped[0].reason == "unknown_sender_request_approval"
    assert transcriber.calls == []


async def test_a_failing_transcriber_never_loses_the_message(ctx: CoreContext, router: Router) -> None:
    a = await agent(ctx)
    await chat_with(ctx, [a], platform_id="dm")
    await member(ctx, "alice", a)

    class Broken:
        async def transcribe(self, msg: InboundMessage, agent_group_id: str) -> InboundMessage:
            raise RuntimeError("bug")

    ctx.transcriber = Broken()
    result = await router.route(inbound("listen", chat="dm", attachments=(VOICE,)))

    [outcome] = result.delivered
    [row] = await rows_of(ctx, outcome.session_id or "")
    assert json.loads(row["content"])["text"] == "listen"
