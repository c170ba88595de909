"""The first-run wizard: model access → containers → WhatsApp → Telegram → name your agent → a live test message.

Each step checks before it keeps anything, and what it keeps is real app state (the key in the secret store, the
server address in settings, the agent in the database), so the wizard can be run again from Settings: it pre-fills
from that state and changes only what the user changes. Progress lives in ``app_state`` under ``wizard.*``;
``wizard.completed`` (set by a passed live test) sends the front page to the chat instead of here.

The phone channels come before the agent (as in DESIGN), so a chat paired there has no agent to answer yet: naming the
agent wires every such chat to it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import os
import time
import weakref
from dataclasses import dataclass
from typing import Any

from nanoclaw_app.channels import registry as channel_registry
from nanoclaw_app.core.events import Event
from nanoclaw_app.core.projection import reproject_agent
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import app_state, messaging
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db import users as users_db
from nanoclaw_app.db.rows import AgentGroup
from nanoclaw_app.errors import ConfigError, UserError
from nanoclaw_app.gateway.upstream import build_upstreams
from nanoclaw_app.services import agents as agent_service
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.services.engine_check import ENGINE_DONE, BuildState, build_state
from nanoclaw_app.services.model_check import (
    DEFAULT_ANTHROPIC_MODEL,
    LABEL_OF_KIND,
    CheckResult,
    ModelChoice,
    StepFailed,
    clean_choice,
    clean_key,
    key_required,
    probe_model,
    same_server,
)
from nanoclaw_app.services.secrets import delete_secret, put_secret, secret_status
from nanoclaw_app.settings import ENV_PREFIX, Settings, load_settings, save_settings
from nanoclaw_app.timeutil import now_iso

log = logging.getLogger(__name__)

COMPLETED = "wizard.completed"
"""Also read by the front page (``web/controllers/session.py``)."""
MODEL = "wizard.model"
AGENT = "wizard.agent_id"
TESTED = "wizard.tested"


def channel_steps() -> tuple[str, ...]:
    """The channel steps (the channels whose manifest asks for one), in the order the app lists channels.

    ``wizard.<name>`` holds ``done`` or ``skipped`` once the person moved past one.
    """
    return tuple(m.name for m in channel_registry.CHANNELS if m.in_wizard)


def steps_in_order() -> tuple[str, ...]:
    """Every wizard step, in order."""
    return ("model", "engine", *channel_steps(), "agent", "test")

OUTCOMES = ("done", "skipped")
TEST_TIMEOUT = 120.0
"""A first container start (and a first model call) can take a while; longer than this means something is wrong."""
TEST_TEXT = "Hello! This is the setup test. Please answer with one short, friendly sentence."
OWNER_CHAT = "owner"
MAX_AGENT_NAME = 40
OPENAI_DEFAULT_URL = "https://api.openai.com/v1"
SECRETS_FIX = "Set a passphrase for the secret store in Settings, then come back to this step."


# ---------------------------------------------------------------------------------------------------- state


@dataclass
class ModelState:
    """The saved model choice (never the key itself)."""

    kind: str = "anthropic"
    model: str = DEFAULT_ANTHROPIC_MODEL
    base_url: str = ""
    anthropic_key_saved: bool = False
    openai_key_saved: bool = False


@dataclass
class SecretsState:
    """Whether keys can be stored, and what to do when not."""

    usable: bool
    locked: bool
    needs_passphrase: bool
    reason: str


@dataclass
class AgentState:
    """The wizard's agent."""

    id: str
    name: str


@dataclass
class WizardState:
    """Everything the wizard page needs to show where the user is."""

    completed: bool
    steps: dict[str, bool]
    """``model``, ``engine``, ``whatsapp``, ``telegram``, ``agent``, ``test``: whether each step has passed (a
    channel step passes when the channel works or was skipped)."""
    skipped: list[str]
    """The channel steps passed by skipping them (and not set up since): the progress bar shows them as skipped."""
    current: int
    """The step to open (1-6): the first not yet passed, or 1 once setup is complete (a re-run)."""
    model: ModelState
    secrets: SecretsState
    engine_runtime: str
    build: BuildState
    agent: AgentState | None
    test_text: str
    """The message the live test sends (the page shows it as the person's bubble)."""


async def wizard_state(services: AppServices) -> WizardState:
    """Read the wizard's progress and pre-fill values from the app's state."""
    db = services.ctx.db
    saved = await _saved_choice(services)
    keys = await _keys_saved(services)
    model = ModelState(anthropic_key_saved=keys["anthropic_api_key"], openai_key_saved=keys["openai_api_key"])
    if saved is not None:
        model.kind, model.model, model.base_url = saved.kind, saved.model, saved.base_url
    if not model.base_url:
        configured = services.settings.openai_base_url  # set up earlier by hand: offer it; OpenAI's default: not
        model.base_url = "" if configured == OPENAI_DEFAULT_URL else configured
    agent = await _wizard_agent(services)
    channels = {name: await _channel_step(services, name) for name in channel_steps()}
    steps = {
        "model": saved is not None,
        "engine": await app_state.get(db, ENGINE_DONE) is not None,
        **{name: outcome is not None for name, outcome in channels.items()},
        "agent": agent is not None and await app_state.get(db, AGENT) == agent.id,
        "test": await app_state.get(db, COMPLETED) is not None,
    }
    current = 1 if steps["test"] else next((i + 1 for i, name in enumerate(steps_in_order()) if not steps[name]), 1)
    return WizardState(
        completed=steps["test"], steps=steps,
        skipped=[name for name, outcome in channels.items() if outcome == "skipped"], current=current, model=model,
        secrets=await _secrets_state(services),
        engine_runtime=services.runtime.name if services.runtime is not None else "none",
        build=build_state(services), agent=AgentState(agent.id, agent.name) if agent is not None else None,
        test_text=TEST_TEXT,
    )


async def _saved_choice(services: AppServices) -> ModelChoice | None:
    raw = await app_state.get(services.ctx.db, MODEL)
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return ModelChoice(kind=str(data["kind"]), model=str(data["model"]), base_url=str(data.get("base_url", "")))
    except (ValueError, KeyError, TypeError):
        log.warning("setup: ignoring an unreadable saved model choice %r", raw[:200])
        return None


async def _keys_saved(services: AppServices) -> dict[str, bool]:
    found = {"anthropic_api_key": False, "openai_api_key": False}
    if not services.secrets.available:
        return found
    for name in found:
        try:
            found[name] = await services.secrets.get(name) is not None
        except ConfigError as err:
            log.warning("setup: cannot tell whether %s is set: %s", name, err)
    return found


async def _secrets_state(services: AppServices) -> SecretsState:
    status = await secret_status(services)
    return SecretsState(usable=services.secrets.available, locked=status.locked,
                        needs_passphrase=status.needs_passphrase_setup, reason=status.reason)


async def _wizard_agent(services: AppServices) -> AgentGroup | None:
    """The agent the wizard made (or, on a home set up another way, the first agent)."""
    db = services.ctx.db
    agent_id = await app_state.get(db, AGENT)
    agent = await agents_db.get(db, agent_id) if agent_id else None
    if agent is None:
        everyone = await agents_db.list_all(db)
        agent = everyone[0] if everyone else None
    return agent


# ---------------------------------------------------------------------------------------------------- step 1


@dataclass
class ModelResult:
    """A passed model step."""

    message: str
    kind: str
    model: str
    base_url: str
    models: list[str]


async def configure_model(services: AppServices, kind: str, api_key: str, base_url: str, model: str) -> ModelResult:
    """Check the input, keep the key and address, and prove them with a real call; on failure, put back what was.

    An empty key keeps the saved one (a re-run), except that a saved OpenAI-compatible key never goes to a server other
    than the one it was saved for: it is removed instead when the address changes to another server.
    """
    choice = clean_choice(kind, base_url, model)
    key = clean_key(choice.kind, api_key)
    name = choice.secret_name
    old_settings = services.settings
    needs_store = bool(key) or key_required(choice)
    if needs_store and not services.secrets.available:
        raise StepFailed(f"NanoClaw cannot keep your key safely yet: {services.secrets.unavailable_reason}. "
                         f"{SECRETS_FIX}", "api_key")
    previous = await services.secrets.get(name) if services.secrets.available else None
    drop_saved = (not key and previous is not None and choice.kind == "openai_compatible"
                  and not same_server(old_settings.openai_base_url, choice.base_url))
    if not key and key_required(choice) and (previous is None or drop_saved):
        where = "console.anthropic.com → API Keys" if choice.kind == "anthropic" else "platform.openai.com/api-keys"
        raise StepFailed(f"Paste your API key (from {where}).", "api_key")
    changes = ({"openai_base_url": choice.base_url}
               if choice.kind == "openai_compatible" and choice.base_url != old_settings.openai_base_url else {})
    if changes and ENV_PREFIX + "OPENAI_BASE_URL" in os.environ:
        raise StepFailed(f"{ENV_PREFIX}OPENAI_BASE_URL is set in NanoClaw's environment and decides the address "
                         f"({old_settings.openai_base_url}). Change or remove that variable, then restart NanoClaw.",
                         "base_url")
    settings_before = _read_settings_file(services) if changes else None
    try:
        if key and key != previous:
            await put_secret(services, name, key, LABEL_OF_KIND[choice.kind])
        elif drop_saved:
            await delete_secret(services, name)
            log.info("setup: the saved %s was removed: the server address changed", name)
        if changes:
            await _apply_settings(services, changes)
        display = _upstream_display(services, choice)
        result: CheckResult = await probe_model(services.gateway, choice, display)
    except BaseException:
        await _restore(services, name, previous, key, drop_saved, settings_before,
                       {changed: getattr(old_settings, changed) for changed in changes})
        raise
    await app_state.put(services.ctx.db, MODEL, json.dumps(
        {"kind": choice.kind, "model": choice.model, "base_url": choice.base_url, "provider": choice.provider}))
    agent = await _wizard_agent(services)
    if agent is not None and await app_state.get(services.ctx.db, AGENT) == agent.id:
        await _configure_agent(services, agent.id, choice)
    log.info("setup: model access checked (%s, %s)", choice.kind, choice.model)
    services.ctx.events.publish("setup.step", step="model", access=choice.kind, model=choice.model)
    return ModelResult(message=result.message, kind=choice.kind, model=choice.model, base_url=choice.base_url,
                       models=list(result.models))


def _upstream_display(services: AppServices, choice: ModelChoice) -> str:
    upstream = build_upstreams(services.settings)["anthropic" if choice.kind == "anthropic" else "openai"]
    return upstream.display


async def _apply_settings(services: AppServices, changes: dict[str, Any]) -> None:
    """Save to settings.json and swap the values into the running host (which re-points the gateway)."""
    paths = services.settings.paths
    load_settings(paths, **changes)  # the whole file must stay valid with the change
    save_settings(paths, changes)
    await _swap_in(services, changes)


async def _swap_in(services: AppServices, changes: dict[str, Any]) -> None:
    """The running settings with ``changes`` as the file now has them (start-time overrides stay)."""
    fresh = load_settings(services.settings.paths)
    await _put_in(services, services.settings.replaced({name: getattr(fresh, name) for name in changes}))


async def _put_in(services: AppServices, after: Settings) -> None:
    changed = sorted(f.name for f in dataclasses.fields(after) if getattr(after, f.name) != getattr(services.settings,
                                                                                                    f.name))
    if services.reload_settings is not None:
        await services.reload_settings(after)
    else:
        services.ctx.settings = after
    services.ctx.events.publish("settings.changed", changed=changed, restart_needed=[])


async def _restore(services: AppServices, name: str, previous: str | None, key: str, dropped: bool,
                   settings_file: bytes | None, old_values: dict[str, Any]) -> None:
    """Put the key and settings.json back as they were before a failed check (each failure logged, never hidden)."""
    try:
        if (key and key != previous) or dropped:
            if previous is not None:
                await put_secret(services, name, previous, LABEL_OF_KIND["anthropic" if name.startswith("anthropic")
                                                                         else "openai_compatible"])
            else:
                await delete_secret(services, name)
    except Exception:
        log.exception("setup: could not put back the previous %s after a failed check", name)
    if not old_values:
        return
    file = services.settings.paths.settings_file
    try:
        if settings_file is None:
            file.unlink(missing_ok=True)
        else:
            tmp = file.with_name(file.name + ".tmp")
            tmp.write_bytes(settings_file)
            tmp.replace(file)
        await _put_in(services, services.settings.replaced(old_values))
    except Exception:
        log.exception("setup: could not put back %s after a failed check", file)


def _read_settings_file(services: AppServices) -> bytes | None:
    try:
        return services.settings.paths.settings_file.read_bytes()
    except FileNotFoundError:
        return None


# ---------------------------------------------------------------------------------------------------- steps 3-4


async def _channel_step(services: AppServices, name: str) -> str | None:
    """How a channel step stands: ``done``, ``skipped`` or None (not passed yet).

    A channel set up and turned on anywhere (here, on the channels page, with the CLI) is ``done``, even after a skip:
    the progress bar must not call a working channel skipped.
    """
    from nanoclaw_app.services.channels import get_channel

    view = await get_channel(services, name)
    if view.enabled and view.set_up:
        return "done"
    outcome = await app_state.get(services.ctx.db, f"wizard.{name}")
    return outcome if outcome in OUTCOMES else None


@dataclass
class ChannelStepResult:
    """A phone channel step left behind: linked (``done``) or skipped for now."""

    channel: str
    outcome: str


async def finish_channel_step(services: AppServices, channel: str, outcome: str) -> ChannelStepResult:
    """Move past a channel's step; ``done`` only when the channel really works, ``skipped`` always.

    Skipping changes nothing about the channel: it can be set up on the channels page any time.
    """
    from nanoclaw_app.services.channels import not_working

    if channel not in channel_steps():
        raise StepFailed(f"there is no setup step for {channel!r}")
    if outcome not in OUTCOMES:
        raise StepFailed(f"a step ends as {' or '.join(OUTCOMES)}, not {outcome!r}")
    if outcome == "done":
        problem = await not_working(services, channel)
        if problem is not None:
            raise StepFailed(f"{problem}, or skip this step.")
    await app_state.put(services.ctx.db, f"wizard.{channel}", outcome)
    log.info("setup: the %s step is %s", channel, outcome)
    services.ctx.events.publish("setup.step", step=channel, outcome=outcome)
    return ChannelStepResult(channel, outcome)


async def _wire_paired_chats(services: AppServices, agent_id: str) -> list[str]:
    """Wire the agent to every phone chat that was paired before any agent existed; returns their ids.

    Those are the chats bound by a pairing code or as the owner's own (the WhatsApp self chat), with no agent yet: a
    DM answers every message (pattern "."), a group answers when the agent is mentioned, as pairing does.
    """
    db = services.ctx.db
    chat_ids = await messaging.unwired_paired_chats(db, tuple(m.name for m in channel_registry.CHANNELS))
    wired: list[str] = []
    for chat_id in chat_ids:
        chat = await messaging.get(db, chat_id)
        if chat is None:  # pragma: no cover - deleted between the two reads
            continue
        spec = (messaging.WiringSpec(engage_mode="mention") if chat.is_group
                else messaging.WiringSpec(engage_mode="pattern", engage_pattern="."))
        await messaging.wire(db, chat.id, agent_id, spec)
        services.ctx.events.publish("chat.wired", messaging_group_id=chat.id, agent_group_id=agent_id)
        wired.append(chat.id)
    if wired:
        await reproject_agent(services.ctx, agent_id)
        log.info("setup: agent %s now answers in %d chat(s) paired before it existed", agent_id, len(wired))
    return wired


# ---------------------------------------------------------------------------------------------------- step 5


async def name_agent(services: AppServices, name: str) -> AgentState:
    """Create the first agent (or rename the wizard's agent) with the chosen model, and wire the in-app chat to it.

    Phone chats paired in the steps before (when no agent existed yet) are wired to the new agent too.
    """
    from nanoclaw_app.services.chat import OWNER_USER, ensure_owner_chat

    clean = " ".join(name.split())
    if not clean:
        raise StepFailed("Give your agent a name, such as Nano or Ada.", "name")
    if len(clean) > MAX_AGENT_NAME:
        raise StepFailed(f"Keep the name to {MAX_AGENT_NAME} characters or fewer.", "name")
    if not clean.isprintable():
        raise StepFailed("The name has characters that cannot be shown; type it again.", "name")
    choice = await _saved_choice(services)
    if choice is None:
        raise StepFailed("Set up model access first (step 1).")
    agent = await _wizard_agent(services)
    try:
        if agent is None:
            detail = await agent_service.create_agent(services, clean, choice.provider, choice.model)
            agent_id = detail.id
        else:
            agent_id = agent.id
        updated = await _configure_agent(services, agent_id, choice, name=clean)
    except UserError as err:
        raise StepFailed(str(err), "name") from err
    db = services.ctx.db
    if agent is None and OWNER_USER not in await users_db.owners(db):
        # The person at the app runs the first setup: they stay the owner even when a phone chat was paired (and so
        # made an owner) in the channel steps before.
        if await users_db.get(db, OWNER_USER) is None:
            await users_db.upsert(db, OWNER_USER, "webchat", "Owner")
        await users_db.grant(db, OWNER_USER, "owner")
    await ensure_owner_chat(services, agent_id)
    await _wire_paired_chats(services, agent_id)
    await app_state.put(db, AGENT, agent_id)
    log.info("setup: agent %s is called %s", agent_id, updated.name)
    services.ctx.events.publish("setup.step", step="agent", agent_group_id=agent_id, name=updated.name)
    return AgentState(agent_id, updated.name)


async def _configure_agent(services: AppServices, agent_id: str, choice: ModelChoice,
                           name: str | None = None) -> agent_service.AgentDetail:
    """Give the agent the chosen provider, model (and name); a changed model restarts its running container.

    Otherwise the live test would talk to a container still running with the old settings.
    """
    before = await agents_db.get_config(services.ctx.db, agent_id)
    updated = await agent_service.update_agent(services, agent_id, name=name, provider=choice.provider,
                                               model=choice.model, assistant_name=name)
    if before is not None and (before.provider, before.model) != (choice.provider, choice.model):
        result = await agent_service.restart_agent(services, agent_id)
        log.info("setup: agent %s now uses %s %s; %s", agent_id, choice.provider, choice.model, result.message)
    return updated


# ---------------------------------------------------------------------------------------------------- step 6


@dataclass
class LiveTestResult:
    """A passed live test: the agent's answer and how long it took."""

    reply: str
    seconds: float
    agent_name: str


_test_locks: weakref.WeakKeyDictionary[AppServices, asyncio.Lock] = weakref.WeakKeyDictionary()


async def run_test(services: AppServices, *, wait_seconds: float = TEST_TIMEOUT) -> LiveTestResult:
    """Send a real message to the agent through the in-app chat and wait for its answer; a pass completes setup."""
    from nanoclaw_app.services.chat import send_message

    db = services.ctx.db
    agent_id = await app_state.get(db, AGENT)
    agent = await agents_db.get(db, agent_id) if agent_id else None
    if agent is None:
        raise StepFailed("Name your agent first (step 5).")
    if not services.live:
        raise StepFailed("The live test needs the running NanoClaw app; open the setup there.")
    lock = _test_locks.setdefault(services, asyncio.Lock())
    if lock.locked():
        raise StepFailed("A test message is already on its way; wait for its answer.")
    async with lock, services.ctx.events.subscribe() as queue:
        started = time.monotonic()
        await send_message(services, TEST_TEXT, platform_id=OWNER_CHAT)
        log.info("setup: live test message sent to agent %s", agent.id)
        try:
            async with asyncio.timeout(wait_seconds):
                reply = await _wait_reply(services, queue, agent.id)
        except TimeoutError:
            services.ctx.events.publish("setup.test_failed", agent_group_id=agent.id, reason="timeout")
            raise StepFailed(f"{agent.name} did not answer within {wait_seconds:.0f} seconds. Activity shows the "
                             "container log and any failed model calls; the usual causes are model access (step 1) "
                             "or the container engine (step 2).") from None
    seconds = round(time.monotonic() - started, 1)
    await app_state.put(db, TESTED, now_iso())
    await app_state.put(db, COMPLETED, now_iso())
    log.info("setup: live test passed in %.1f s; setup complete", seconds)
    services.ctx.events.publish("setup.step", step="test", agent_group_id=agent.id, seconds=seconds)
    return LiveTestResult(reply=reply, seconds=seconds, agent_name=agent.name)


async def _wait_reply(services: AppServices, queue: asyncio.Queue[Event], agent_id: str) -> str:
    """The agent's first answer in the owner chat; a container that cannot start, or a refused model, ends it early.

    The runner passes a failed model call on to the user as a message, so an answer that follows only failed model
    calls is that error, not a pass.
    """
    failed_model: str | None = None
    good_model_call = False
    sessions = await sessions_db.ids_for_agent(services.ctx.db, agent_id)
    while True:
        event = await queue.get()
        data = event.data
        if event.kind == "session.created" and data.get("agent_group_id") == agent_id:
            sessions.add(str(data.get("session_id")))
        elif event.kind == "container.start_failed" and data.get("session_id") in sessions:
            services.ctx.events.publish("setup.test_failed", agent_group_id=agent_id, reason="container")
            raise StepFailed(f"The agent's container could not start: {data.get('error')}. Go back to step 2 to "
                             "check the container engine.")
        elif event.kind == "gateway.call" and data.get("agent_group_id") == agent_id:
            status = int(data.get("status") or 0)
            if status < 300:
                good_model_call = True
            else:
                failed_model = f"the model answered HTTP {status}"
        elif event.kind in ("gateway.refused", "gateway.upstream_failed") and data.get("session_id") in sessions:
            failed_model = f"the model gateway refused the call ({data.get('reason') or data.get('error')})"
        elif event.kind == "chat.message":
            message = data.get("message") or {}
            if message.get("direction") != "out" or message.get("platform_id") != OWNER_CHAT:
                continue
            text = str(message.get("text") or "")
            if failed_model is not None and not good_model_call:
                services.ctx.events.publish("setup.test_failed", agent_group_id=agent_id, reason="model")
                raise StepFailed(f"The agent answered, but its model call failed ({failed_model}): “{text[:400]}”. "
                                 "Go back to step 1 to check model access.")
            return text
