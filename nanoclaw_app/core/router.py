"""The inbound router: which agents get a message from a chat, in which session, and whether it wakes them.

Path of one message (reference §2.1–2.2, DESIGN §4 steps 1–3): check the channel → strip threads the adapter cannot
keep → offer it to the interceptors in order (pairing codes, a new agent's name) → find or (only when the bot was
addressed) create the chat → resolve the sender → for every wiring by priority: engage test, access gate, sender
scope, command gate, voice notes in words (once per message, ``CoreContext.transcriber``), session, write, wake.

Every message that reaches no agent is recorded in ``dropped_messages`` with its reason and published as a
``message.dropped`` event; routing never raises into an adapter. A session database that cannot take a message for
now (locked, busy) does not lose it: the message is held (:mod:`nanoclaw_app.core.held`) and handed over later.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol

from nanoclaw_app.core import command_gate, engage, inbox
from nanoclaw_app.core.access import can_access, is_admin_of
from nanoclaw_app.core.adapter_contract import ChannelAdapter
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.held import HeldMessages, classify, describe
from nanoclaw_app.core.messages import InboundMessage, OutboundMessage
from nanoclaw_app.core.notify import notify_owner
from nanoclaw_app.db import denials, drops, messaging, users
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.held import HeldMessage
from nanoclaw_app.db.rows import MessagingGroup, Session, Wiring
from nanoclaw_app.ids import new_id
from nanoclaw_app.timeutil import parse_utc, utcnow

log = logging.getLogger(__name__)

TOUCH_INTERVAL_S = 5.0
"""``sessions.last_active`` is refreshed at most this often per session: a central write per message would cost
throughput for a value the UI shows in minutes and the idle logic counts in minutes."""

KNOWN_SENDERS_MAX = 4096
"""Senders remembered as already stored; a removed user is re-created by the approval flow that needs them."""

_QUIET_REASONS = frozenset({"no_agent_engaged", "unknown_chat_not_addressed", "not_addressed"})
"""Drops that are ordinary group chatter: recorded and published, logged only at debug level."""

Outcome = Literal["delivered", "accumulated", "held", "dropped"]
"""``held``: the session could not take it yet; it is kept and handed over later (see :mod:`.held`)."""


Interceptor = Callable[[InboundMessage], Awaitable[bool]]
"""Looks at a message before routing; True means it consumed it (a pairing code, the name typed for a new agent)."""


class ApprovalHooks(Protocol):
    """What the approval flows (sender approval, channel registration) offer the router."""

    async def request_sender_approval(
        self, msg: InboundMessage, chat: MessagingGroup, wiring: Wiring, user_id: str
    ) -> None:
        """Ask an approver whether this unknown sender may talk to the wiring's agent."""

    async def request_channel_registration(self, msg: InboundMessage, chat: MessagingGroup) -> None:
        """Ask an approver which agent (if any) should answer in this unwired chat."""


class NoApprovals:
    """Hooks for a host without approval flows (benchmarks, tests): requests only logged."""

    async def request_sender_approval(
        self, msg: InboundMessage, chat: MessagingGroup, wiring: Wiring, user_id: str
    ) -> None:
        """Log that a card would have been sent."""
        log.info("no approval flow: sender %s stays refused in chat %s", user_id, chat.id)

    async def request_channel_registration(self, msg: InboundMessage, chat: MessagingGroup) -> None:
        """Log that a card would have been sent."""
        log.info("no approval flow: chat %s stays unwired", chat.id)


@dataclass(frozen=True, slots=True)
class AgentOutcome:
    """What happened to the message for one wired agent."""

    agent_group_id: str
    outcome: Outcome
    reason: str | None = None
    session_id: str | None = None
    seq: int | None = None


@dataclass(slots=True)
class RouteResult:
    """The router's account of one message: per-agent outcomes, or the reason it reached no agent."""

    message_id: str
    messaging_group_id: str | None = None
    intercepted: bool = False
    drop_reason: str | None = None
    """Set when the message as a whole reached no agent (``no_agent_wired``, ``unknown_channel``, ...)."""
    agents: list[AgentOutcome] = field(default_factory=list)

    @property
    def delivered(self) -> list[AgentOutcome]:
        """Agents that got the message and were woken."""
        return [a for a in self.agents if a.outcome == "delivered"]

    @property
    def accumulated(self) -> list[AgentOutcome]:
        """Agents that stored the message as context without waking."""
        return [a for a in self.agents if a.outcome == "accumulated"]

    @property
    def held(self) -> list[AgentOutcome]:
        """Agents whose session could not take the message yet: it waits in the central DB and is retried."""
        return [a for a in self.agents if a.outcome == "held"]

    @property
    def dropped(self) -> list[AgentOutcome]:
        """Agents that did not get the message, with the reason."""
        return [a for a in self.agents if a.outcome == "dropped"]

    def for_agent(self, agent_group_id: str) -> AgentOutcome | None:
        """The outcome for one agent, if it is wired to the chat."""
        return next((a for a in self.agents if a.agent_group_id == agent_group_id), None)


@dataclass(slots=True)
class _PerMessage:
    """Once-per-message side effects while fanning out over several wirings."""

    approval_requested: bool = False
    denial_sent: bool = False
    typing_sent: bool = False
    subscribed: bool = False
    drop_recorded: bool = False
    transcribed: InboundMessage | None = None
    """The message with its voice notes in words, made for the first agent that takes it and reused for the rest."""


_HELD: ContextVar[frozenset[tuple[str, str]]] = ContextVar("router_held_chats", default=frozenset())


class _ChatLocks:
    """One lock per chat so messages of a chat get their seqs in arrival order, even from a concurrent adapter.

    Re-entrant per task: an approval flow that replays a message of the same chat while routing must not deadlock.
    """

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._waiters: dict[tuple[str, str], int] = {}

    @asynccontextmanager
    async def hold(self, key: tuple[str, str]) -> AsyncIterator[None]:
        held = _HELD.get()
        if key in held:
            yield
            return
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiters[key] = self._waiters.get(key, 0) + 1
        try:
            async with lock:
                token = _HELD.set(held | {key})
                try:
                    yield
                finally:
                    _HELD.reset(token)
        finally:
            self._waiters[key] -= 1
            if self._waiters[key] == 0:
                del self._waiters[key]
                del self._locks[key]


class Router:
    """Routes inbound messages from every adapter; one per host, built by the composition root."""

    def __init__(self, ctx: CoreContext, hooks: ApprovalHooks, interceptors: Sequence[Interceptor] = ()) -> None:
        self._ctx = ctx
        self._hooks = hooks
        self._interceptors = tuple(interceptors)
        """Asked in this order; the first that consumes a message ends its routing."""
        self._patterns = engage.PatternCache()
        self._locks = _ChatLocks()
        self._known_senders: set[tuple[str, str]] = set()
        self.held = HeldMessages(ctx, deliver=self._deliver_held, give_up=self._give_up_held)

    async def start(self) -> None:
        """Start handing held messages (this run's and an earlier run's) to their sessions."""
        await self.held.start()

    async def stop(self) -> None:
        """Stop the retries; held messages stay in the central DB for the next start."""
        await self.held.stop()

    async def on_inbound(self, msg: InboundMessage) -> None:
        """The adapter callback and ``CoreContext.route`` shape: route and forget the result."""
        await self.route(msg)

    async def route(self, msg: InboundMessage) -> RouteResult:
        """Route one message. Never raises (except cancellation): a failure is logged and recorded as a drop."""
        try:
            return await self._route(msg)
        except Exception as err:
            log.exception("routing message %r from %r chat %r failed",
                          getattr(msg, "message_id", None), getattr(msg, "channel_type", None),
                          getattr(msg, "platform_id", None))
            await self._drop(msg, "route_error", detail=f"{type(err).__name__}: {err}")
            return RouteResult(str(getattr(msg, "message_id", "")), drop_reason="route_error")

    # ------------------------------------------------------------------------------------------ message level

    async def _route(self, raw: InboundMessage) -> RouteResult:
        msg = await self._normalize(raw)
        if msg is None:
            return RouteResult(str(raw.message_id), drop_reason="malformed_message")
        adapter = self._ctx.channels.get(msg.channel_type)
        if adapter is None:
            log.error("message %s arrived for channel %r, which is not running here; dropped",
                      msg.message_id, msg.channel_type)
            await self._drop(msg, "unknown_channel", detail=f"no adapter for channel {msg.channel_type!r}")
            return RouteResult(msg.message_id, drop_reason="unknown_channel")
        if not adapter.supports_threads and msg.thread_id is not None:
            msg = replace(msg, thread_id=None)
        if await self._intercepted(msg):
            return RouteResult(msg.message_id, intercepted=True)
        async with self._locks.hold((msg.channel_type, msg.platform_id)):
            return await self._route_in_chat(msg, adapter)

    async def _normalize(self, msg: InboundMessage) -> InboundMessage | None:
        """Coerce odd adapter input; a message without a chat or a sender cannot be routed and is recorded."""
        if not isinstance(msg.channel_type, str) or not msg.channel_type:
            msg = replace(msg, channel_type=str(msg.channel_type or ""))
        text = msg.text if isinstance(msg.text, str) else ("" if msg.text is None else str(msg.text))
        sender_name = msg.sender_name if isinstance(msg.sender_name, str) else ""
        message_id = str(msg.message_id) if msg.message_id else ""
        if not message_id:
            message_id = new_id("msg")
            log.warning("message from %s chat %s had no id; routed as %s", msg.channel_type, msg.platform_id,
                        message_id)
        thread_id = None if msg.thread_id in (None, "") else str(msg.thread_id)
        msg = replace(msg, text=text, sender_name=sender_name, message_id=message_id, thread_id=thread_id,
                      is_group=bool(msg.is_group), is_mention=bool(msg.is_mention),
                      platform_id=str(msg.platform_id or ""), sender_id=str(msg.sender_id or ""))
        if not msg.platform_id or not msg.sender_id:
            missing = "chat id" if not msg.platform_id else "sender id"
            log.error("message %s from channel %r has no %s; dropped", msg.message_id, msg.channel_type, missing)
            await self._drop(msg, "malformed_message", detail=f"missing {missing}")
            return None
        return msg

    async def _intercepted(self, msg: InboundMessage) -> bool:
        for interceptor in self._interceptors:
            try:
                if await interceptor(msg):
                    return True
            except Exception:
                # The message may have been meant for this interceptor, but losing it would be worse: go on.
                log.exception("interceptor %s failed on message %s; going on with routing",
                              getattr(interceptor, "__qualname__", interceptor), msg.message_id)
        return False

    async def _route_in_chat(self, msg: InboundMessage, adapter: ChannelAdapter) -> RouteResult:
        db = self._ctx.db
        result = RouteResult(msg.message_id)
        user_id = users.namespaced(msg.channel_type, msg.sender_id)
        chat = await messaging.find(db, msg.channel_type, msg.platform_id)
        if chat is None:
            if not engage.addressed(msg):
                await self._drop(msg, "unknown_chat_not_addressed", user_id=user_id)
                result.drop_reason = "unknown_chat_not_addressed"
                return result
            chat = await messaging.create(db, msg.channel_type, msg.platform_id, name=msg.chat_name,
                                          is_group=msg.is_group, unknown_sender_policy="request_approval")
            log.info("new %s chat %s (%s) registered on first %s", msg.channel_type, chat.id, msg.chat_name,
                     "mention" if msg.is_group else "DM")
            self._ctx.events.publish("chat.created", messaging_group_id=chat.id, channel_type=chat.channel_type,
                                     platform_id=chat.platform_id, name=chat.name, is_group=bool(chat.is_group))
        result.messaging_group_id = chat.id
        await self._upsert_sender(user_id, msg)

        wirings = await messaging.wirings_for(db, chat.id)
        if not wirings:
            result.drop_reason = await self._no_wiring(msg, chat, user_id)
            return result

        command = command_gate.classify(msg.text)
        once = _PerMessage()
        for wiring in wirings:
            result.agents.append(await self._to_agent(msg, chat, wiring, adapter, user_id, command, once))
        if not result.delivered and not result.accumulated and not result.held:
            result.drop_reason = "no_agent_engaged"
            if not once.drop_recorded:
                # A wiring that refused or failed already recorded the real reason; this one is for plain silence.
                await self._drop(msg, "no_agent_engaged", chat=chat, user_id=user_id)
        return result

    async def _upsert_sender(self, user_id: str, msg: InboundMessage) -> None:
        """Create the sender before anything may refer to it (a membership an approval grants), or refresh the name.

        A sender already seen with the same name skips the read: one central query less per message.
        """
        key = (user_id, msg.sender_name)
        if key in self._known_senders:
            return
        await users.upsert(self._ctx.db, user_id, msg.channel_type, msg.sender_name or None)
        if len(self._known_senders) >= KNOWN_SENDERS_MAX:
            self._known_senders.clear()
        self._known_senders.add(key)

    async def _no_wiring(self, msg: InboundMessage, chat: MessagingGroup, user_id: str) -> str:
        if chat.denied_at is not None:
            reason = "channel_denied"
        elif not engage.addressed(msg):
            reason = "not_addressed"
        else:
            reason = "no_agent_wired"
        await self._drop(msg, reason, chat=chat, user_id=user_id)
        if reason == "no_agent_wired":
            try:
                await self._hooks.request_channel_registration(msg, chat)
            except Exception:
                log.exception("channel registration request for chat %s failed", chat.id)
        return reason

    # ------------------------------------------------------------------------------------------ per agent

    async def _to_agent(
        self,
        msg: InboundMessage,
        chat: MessagingGroup,
        wiring: Wiring,
        adapter: ChannelAdapter,
        user_id: str,
        command: command_gate.CommandClass | None,
        once: _PerMessage,
    ) -> AgentOutcome:
        agent = wiring.agent_group_id
        mode = engage.effective_session_mode(wiring, msg, adapter.supports_threads)
        engagement = await engage.evaluate(self._ctx.db, self._patterns, wiring, msg, chat.id, mode)
        if engagement.error is not None:
            reason = "invalid_engage_pattern" if wiring.engage_mode == "pattern" else "invalid_engage_mode"
            log.error("wiring %s of agent %s in chat %s is broken, so the agent ignores message %s: %s",
                      wiring.id, agent, chat.id, msg.message_id, engagement.error)
            await self._drop(msg, reason, chat=chat, user_id=user_id, agent=agent, detail=engagement.error,
                             once=once)
            return AgentOutcome(agent, "dropped", reason)
        engaged = engagement.engaged
        if not engaged and wiring.ignored_message_policy != "accumulate":
            return AgentOutcome(agent, "dropped", "not_engaged")

        refusal = await self._gate(chat, wiring, user_id)
        if refusal is not None:
            # Never accumulate what the gate refused: stored context would reach the agent on its next wake.
            await self._drop(msg, refusal, chat=chat, user_id=user_id, agent=agent, once=once)
            if refusal == "unknown_sender_request_approval" and engaged and not once.approval_requested:
                once.approval_requested = True
                try:
                    await self._hooks.request_sender_approval(msg, chat, wiring, user_id)
                except Exception:
                    log.exception("sender approval request for %s in chat %s failed", user_id, chat.id)
            return AgentOutcome(agent, "dropped", refusal)

        if command == "filtered":
            await self._drop(msg, "filtered_command", chat=chat, user_id=user_id, agent=agent, once=once,
                             detail=command_gate.command_name(msg.text))
            return AgentOutcome(agent, "dropped", "filtered_command")
        if command == "admin" and not await is_admin_of(self._ctx.db, user_id, agent):
            await self._drop(msg, "permission_denied", chat=chat, user_id=user_id, agent=agent, once=once,
                             detail=command_gate.command_name(msg.text))
            if engaged and not once.denial_sent:
                once.denial_sent = True
                await self._reply(adapter, msg, command_gate.denial_text(msg.text))
            return AgentOutcome(agent, "dropped", "permission_denied")

        msg = await self._transcribed(msg, agent, once)
        session = await self._session(wiring, mode, chat, msg)
        if self.held.waiting_in(session.id):
            # Earlier messages of the session wait: this one queues behind them, so the agent reads them in order.
            await self.held.hold(msg, session, user_id=user_id, trigger=engaged, error=None)
            return AgentOutcome(agent, "held", "session_busy", session.id)
        try:
            seq = await self._write(session, msg, trigger=engaged)
        except Exception as err:
            if classify(err) == "permanent":
                log.error("session %s refused message %s for good", session.id, msg.message_id, exc_info=err)
                await self._drop(msg, "route_error", chat=chat, user_id=user_id, agent=agent, detail=describe(err),
                                 once=once)
                return AgentOutcome(agent, "dropped", "route_error")
            await self.held.hold(msg, session, user_id=user_id, trigger=engaged, error=err)
            return AgentOutcome(agent, "held", "session_busy", session.id)
        outcome: Outcome = "delivered" if engaged else "accumulated"
        await self._handed(msg, chat.id, session, seq, trigger=engaged)
        if engaged:
            if (wiring.engage_mode == "mention-sticky" and msg.is_group and msg.is_mention
                    and msg.thread_id is not None and not once.subscribed):
                # The first engaging sticky wiring follows the thread, so follow-ups arrive without a mention.
                once.subscribed = True
                await self._subscribe(adapter, msg.platform_id, msg.thread_id)
            if not once.typing_sent:
                once.typing_sent = True
                await self._typing(adapter, msg, session)
        return AgentOutcome(agent, outcome, None, session.id, seq)

    async def _transcribed(self, msg: InboundMessage, agent: str, once: _PerMessage) -> InboundMessage:
        """Voice notes in words, once per message and only past the gates: a stranger's audio costs nothing."""
        transcriber = self._ctx.transcriber
        if transcriber is None or not msg.attachments:
            return msg
        if once.transcribed is None:
            try:
                once.transcribed = await transcriber.transcribe(msg, agent)
            except Exception:
                log.exception("transcribing the audio of message %s failed; it goes on without", msg.message_id)
                once.transcribed = msg
        return once.transcribed

    async def _handed(self, msg: InboundMessage, chat_id: str, session: Session, seq: int, *, trigger: bool) -> None:
        """The session has the message: refresh its activity, announce it and (when it triggers) wake the agent."""
        await self._touch(session)
        self._ctx.events.publish("message.routed", message_id=msg.message_id, channel_type=msg.channel_type,
                                 platform_id=msg.platform_id, messaging_group_id=chat_id,
                                 agent_group_id=session.agent_group_id, session_id=session.id, seq=seq,
                                 trigger=trigger)
        if trigger:
            await self._wake(session)

    async def _deliver_held(self, held: HeldMessage, msg: InboundMessage) -> None:
        """Hand a held message to its session now; raises while the session still cannot take it.

        A session closed or deleted meanwhile gets nothing: the message is routed anew, as if it just arrived.
        """
        session = await sessions_db.get(self._ctx.db, held.session_id)
        if session is None or session.status != "active":
            log.info("session %s of held message %s is gone; routing the message anew", held.session_id,
                     held.message_id)
            result = await self.route(msg)
            if result.drop_reason == "route_error":
                raise RuntimeError(f"routing held message {held.message_id} anew failed")
            return
        async with self._locks.hold((msg.channel_type, msg.platform_id)):
            seq = await self._write(session, msg, trigger=bool(held.trigger))
            chat = await messaging.find(self._ctx.db, msg.channel_type, msg.platform_id)
            await self._handed(msg, chat.id if chat else session.messaging_group_id or "", session, seq,
                               trigger=bool(held.trigger))
        adapter = self._ctx.channels.get(msg.channel_type)
        if held.trigger and adapter is not None:
            await self._typing(adapter, msg, session)

    async def _give_up_held(self, held: HeldMessage, msg: InboundMessage, reason: str, detail: str) -> None:
        """A held message will not reach its session: record the drop and tell the owner in plain words."""
        chat = await messaging.find(self._ctx.db, msg.channel_type, msg.platform_id)
        await self._drop(msg, reason, chat=chat, user_id=held.user_id, agent=held.agent_group_id, detail=detail)
        who = msg.sender_name or held.user_id or "someone"
        preview = " ".join(msg.text.split())[:80]
        await notify_owner(
            self._ctx,
            f"A message from {who} could not be handed to your agent, so it was not answered"
            + (f": “{preview}”" if preview else "") + ". NanoClaw kept trying for a while; please send it again.",
        )

    async def _subscribe(self, adapter: ChannelAdapter, platform_id: str, thread_id: str) -> None:
        try:
            await adapter.subscribe(platform_id, thread_id)
        except Exception:
            log.exception("could not follow thread %s in %s on %s", thread_id, platform_id, adapter.channel_type)

    async def _gate(self, chat: MessagingGroup, wiring: Wiring, user_id: str) -> str | None:
        """The refusal reason, or None when the sender may reach this agent here."""
        public = chat.unknown_sender_policy == "public"
        if public and wiring.sender_scope != "known":
            return None
        decision = await can_access(self._ctx.db, user_id, wiring.agent_group_id)
        if decision.allowed:
            return None
        if public:
            return "sender_scope_known"
        if chat.unknown_sender_policy == "request_approval":
            # A sender the owner denied is not waiting for anyone: the audit must say so.
            if await denials.is_denied(self._ctx.db, chat.id, user_id):
                return "unknown_sender_denied"
            return "unknown_sender_request_approval"
        return "unknown_sender_strict"

    async def _session(self, wiring: Wiring, mode: str, chat: MessagingGroup, msg: InboundMessage) -> Session:
        session, created = await sessions_db.find_or_create(
            self._ctx.db, wiring.agent_group_id, mode, chat.id, msg.thread_id
        )
        if created:
            await self._ctx.store.create(session.agent_group_id, session.id)
            self._ctx.events.publish("session.created", session_id=session.id, agent_group_id=session.agent_group_id,
                                     messaging_group_id=session.messaging_group_id, thread_id=session.thread_id,
                                     session_mode=mode)
        return session

    async def _write(self, session: Session, msg: InboundMessage, *, trigger: bool) -> int:
        try:
            return await inbox.write_message(self._ctx, session, msg, trigger=trigger)
        except FileNotFoundError:
            # The session row exists but its folder does not (a crash between the two, or a deleted folder).
            log.warning("session %s had no folder; recreating it", session.id)
            await self._ctx.store.create(session.agent_group_id, session.id)
            return await inbox.write_message(self._ctx, session, msg, trigger=trigger)

    async def _touch(self, session: Session) -> None:
        """Refresh ``last_active`` only when it is older than :data:`TOUCH_INTERVAL_S` (or unreadable)."""
        if session.last_active:
            try:
                age = (utcnow() - parse_utc(session.last_active)).total_seconds()
            except ValueError:
                age = TOUCH_INTERVAL_S
            if age < TOUCH_INTERVAL_S:
                return
        await sessions_db.touch(self._ctx.db, session.id)

    async def _wake(self, session: Session) -> None:
        try:
            woke = await self._ctx.waker.wake(session)
        except Exception:
            log.exception("waking session %s failed; its message stays pending for the sweep", session.id)
            return
        if not woke:
            log.warning("session %s could not be woken now; its message stays pending for the sweep", session.id)

    async def _typing(self, adapter: ChannelAdapter, msg: InboundMessage, session: Session) -> None:
        """Show typing now, and have the typing keeper hold it on while the session works on the turn."""
        try:
            await adapter.set_typing(msg.platform_id, msg.thread_id)
        except Exception as err:
            log.warning("typing indicator in %s chat %s failed: %s", msg.channel_type, msg.platform_id, err)
        if self._ctx.typing is not None:
            self._ctx.typing.begin(session, msg.channel_type, msg.platform_id, msg.thread_id)

    async def _reply(self, adapter: ChannelAdapter, msg: InboundMessage, text: str) -> None:
        """Answer straight through the adapter: no session row, no container."""
        out = OutboundMessage(kind="text", delivery_id=new_id("out"), text=text)
        try:
            await adapter.deliver(msg.platform_id, msg.thread_id, out)
        except Exception:
            log.exception("could not send %r to %s chat %s", text, msg.channel_type, msg.platform_id)

    # ------------------------------------------------------------------------------------------ drops

    async def _drop(
        self,
        msg: InboundMessage,
        reason: str,
        *,
        chat: MessagingGroup | None = None,
        user_id: str | None = None,
        agent: str | None = None,
        detail: str | None = None,
        once: _PerMessage | None = None,
    ) -> None:
        """Record and publish a drop; a failing audit write is logged, never raised."""
        if once is not None:
            once.drop_recorded = True
        channel_type = str(getattr(msg, "channel_type", "") or "")
        platform_id = str(getattr(msg, "platform_id", "") or "")
        text = getattr(msg, "text", None)
        sender_name = getattr(msg, "sender_name", None)
        level = logging.DEBUG if reason in _QUIET_REASONS else logging.INFO
        log.log(level, "dropped message %s from %s in %s chat %s (agent %s): %s%s",
                getattr(msg, "message_id", None), user_id, channel_type, platform_id, agent, reason,
                f" ({detail})" if detail else "")
        try:
            await drops.record(
                self._ctx.db,
                channel_type=channel_type,
                platform_id=platform_id,
                reason=reason,
                user_id=user_id,
                sender_name=sender_name if isinstance(sender_name, str) else None,
                messaging_group_id=None if chat is None else chat.id,
                agent_group_id=agent,
                text=text if isinstance(text, str) else None,
                detail=detail,
            )
        except Exception:
            log.exception("could not record the drop (%s) of message %s", reason, getattr(msg, "message_id", None))
        self._ctx.events.publish("message.dropped", reason=reason, message_id=getattr(msg, "message_id", None),
                                 channel_type=channel_type, platform_id=platform_id, user_id=user_id,
                                 messaging_group_id=None if chat is None else chat.id, agent_group_id=agent,
                                 detail=detail)
