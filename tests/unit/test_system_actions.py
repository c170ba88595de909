"""System actions: what the container asks the host to do, and how refusals reach the agent (reference §2.6)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from agent_runner.protocol import ChatContent, OutboundRow, SystemAction
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.system_actions import (
    MEMORY_FILE,
    SystemActions,
    apply_add_mcp_server,
    apply_create_agent,
    apply_install_packages,
)
from nanoclaw_app.db import agents, destinations, messaging
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.rows import Session
from nanoclaw_app.timeutil import now_iso


class ApprovalRequests:
    def __init__(self, answer: str | None = "appr-1") -> None:
        self.calls: list[dict[str, Any]] = []
        self.answer = answer

    async def __call__(self, **kwargs: Any) -> str | None:
        self.calls.append(kwargs)
        return self.answer


@dataclass
class DecidedApproval:
    payload: str
    session_id: str | None
    agent_group_id: str | None


@pytest.fixture
async def setup(ctx):
    agent = await agents.create(ctx.db, "Helper")
    chat = await messaging.create(ctx.db, "test", "chat-1", name="Family")
    await messaging.wire(ctx.db, chat.id, agent.id)
    session, _ = await sessions_db.find_or_create(ctx.db, agent.id, "shared", chat.id, None)
    folder = await ctx.store.create(agent.id, session.id)
    return agent, session, folder


@pytest.fixture
def approvals() -> ApprovalRequests:
    return ApprovalRequests()


@pytest.fixture
def actions(ctx: CoreContext, approvals: ApprovalRequests) -> SystemActions:
    return SystemActions(ctx, request_approval=approvals)


def system_row(action: str, payload: dict[str, Any] | None = None, *, request_id: str | None = None) -> OutboundRow:
    content = SystemAction(action=action, payload=payload or {}, request_id=request_id).to_json()
    return OutboundRow(id="out-1", seq=1, kind="system", timestamp=now_iso(), content=content)


async def notes(ctx: CoreContext, session: Session) -> list[dict[str, Any]]:
    folder = ctx.store.dir(session.agent_group_id, session.id)
    found: list[dict[str, Any]] = await ctx.store.read(
        folder, lambda c: [dict(r) for r in c.execute(
            "SELECT * FROM messages_in WHERE channel_type = 'agent' ORDER BY seq")], with_outbound=False)
    return [{**r, "text": ChatContent.from_dict(json.loads(r["content"])).text} for r in found]


# --------------------------------------------------------------------------------------------- dispatch


async def test_schedule_task_inserts_a_task_row(ctx, setup, actions):
    _, session, folder = setup
    await actions.apply(session, system_row("schedule_task", {"prompt": "call mum",
                                                              "processAfter": "2030-05-01T18:00:00"}))
    tasks = await ctx.store.read(folder, lambda c: c.execute("SELECT * FROM messages_in WHERE kind = 'task'")
                                 .fetchall(), with_outbound=False)
    assert [json.loads(t["content"])["prompt"] for t in tasks] == ["call mum"]


async def test_an_unknown_action_is_logged_and_told_to_the_agent(ctx, setup, actions, caplog):
    _, session, _ = setup
    async with ctx.events.subscribe() as events:
        await actions.apply(session, system_row("launch_rockets"))
        assert events.get_nowait().kind == "system_action.unknown"
    (note,) = await notes(ctx, session)
    assert "unknown action 'launch_rockets'" in note["text"]
    assert "unknown system action" in caplog.text


async def test_a_malformed_action_is_told_to_the_agent(ctx, setup, actions):
    _, session, _ = setup
    row = OutboundRow(id="out-1", seq=1, kind="system", timestamp=now_iso(), content='{"payload": {}}')
    await actions.apply(session, row)
    (note,) = await notes(ctx, session)
    assert "malformed" in note["text"]


# --------------------------------------------------------------------------------------------- create_agent


async def test_create_agent_only_asks_an_admin(ctx, setup, actions, approvals):
    _, session, _ = setup
    await actions.apply(session, system_row("create_agent", {"name": "Travel Planner",
                                                             "instructions": "You plan trips. Be brief."}))
    (call,) = approvals.calls
    assert call["action"] == "create_agent"
    assert call["payload"] == {"name": "Travel Planner", "instructions": "You plan trips. Be brief."}
    assert "Travel Planner" in call["question"]
    assert "You plan trips" in call["question"]
    assert [a.name for a in await agents.list_all(ctx.db)] == ["Helper"]


async def test_approved_create_agent_seeds_memory_links_both_ways_and_tells_the_creator(ctx, setup):
    creator, session, folder = setup
    approval = DecidedApproval(json.dumps({"name": "Travel Planner", "instructions": "You plan trips. Be brief."}),
                               session.id, creator.id)
    result = await apply_create_agent(ctx, approval)
    child = next(a for a in await agents.list_all(ctx.db) if a.name == "Travel Planner")
    memory = ctx.settings.paths.agents / child.folder / MEMORY_FILE
    assert memory.read_text(encoding="utf-8") == "You plan trips. Be brief.\n"
    mine = await destinations.find_target(ctx.db, creator.id, "agent", child.id)
    theirs = await destinations.find_target(ctx.db, child.id, "agent", creator.id)
    assert mine is not None
    assert mine.local_name == "travel-planner"
    assert theirs is not None
    assert theirs.local_name == "parent"
    projected = await ctx.store.read(folder, lambda c: [dict(r) for r in c.execute("SELECT * FROM destinations")],
                                     with_outbound=False)
    assert {"name": "travel-planner", "display_name": "Travel Planner", "type": "agent", "channel_type": None,
            "platform_id": None, "agent_group_id": child.id} in projected
    assert 'to="travel-planner"' in result
    assert await agents.count_made_by_agents(ctx.db) == 1


async def test_create_agent_needs_a_name(ctx, setup, actions):
    _, session, _ = setup
    await actions.apply(session, system_row("create_agent", {"name": "  "}))
    assert len(await agents.list_all(ctx.db)) == 1
    (note,) = await notes(ctx, session)
    assert "needs a name" in note["text"]


# --------------------------------------------------------------------------------------------- install_packages


@pytest.mark.parametrize(("payload", "reason"), [
    ({"apt": ["curl; rm -rf /"]}, "invalid apt package names"),
    ({"pip": ["requests", "--index-url=http://evil"]}, "invalid pip package names"),
    ({"apt": [f"pkg{i}" for i in range(15)], "pip": [f"lib{i}" for i in range(6)]}, "at most 20"),
    ({}, "no packages named"),
    ({"apt": "curl"}, "must be a list"),
    ({"npm": ["left-pad"]}, "npm packages are not supported"),
])
async def test_install_packages_is_validated_before_any_approval(ctx, setup, actions, approvals, payload, reason):
    _, session, _ = setup
    await actions.apply(session, system_row("install_packages", payload))
    assert approvals.calls == []
    (note,) = await notes(ctx, session)
    assert reason in note["text"]
    assert "install_packages" in note["text"]


async def test_install_packages_asks_for_approval(ctx, setup, actions, approvals):
    _, session, _ = setup
    payload = {"apt": ["ffmpeg", "ffmpeg"], "pip": ["yt-dlp==2024.1.1"], "reason": "convert videos"}
    await actions.apply(session, system_row("install_packages", payload))
    (call,) = approvals.calls
    assert call["session"].id == session.id
    assert call["action"] == "install_packages"
    assert call["payload"] == {"apt": ["ffmpeg"], "pip": ["yt-dlp==2024.1.1"], "reason": "convert videos"}
    assert "ffmpeg" in call["question"]
    assert "convert videos" in call["question"]
    assert call["title"]
    assert await notes(ctx, session) == []


async def test_approved_packages_update_the_config_and_restart_with_an_on_wake_note(ctx, setup, waker):
    agent, session, _ = setup
    await agents.update_config(ctx.db, agent.id, packages_apt=json.dumps(["git"]))
    approval = DecidedApproval(json.dumps({"apt": ["ffmpeg", "git"], "pip": ["rich"]}), session.id, agent.id)
    result = await apply_install_packages(ctx, approval)
    config = await agents.get_config(ctx.db, agent.id)
    assert config is not None
    assert json.loads(config.packages_apt) == ["git", "ffmpeg"]
    assert json.loads(config.packages_pip) == ["rich"]
    assert waker.stopped == [(session.id, "config changed")]
    (note,) = await notes(ctx, session)
    assert note["on_wake"] == 1
    assert "ffmpeg" in note["text"]
    assert "\n" not in result
    assert "ffmpeg" in result


# --------------------------------------------------------------------------------------------- add_mcp_server


@pytest.mark.parametrize(("payload", "reason"), [
    ({"name": "", "command": "npx"}, "needs a name"),
    ({"name": "files", "command": " "}, "needs a command"),
    ({"name": "../x", "command": "npx"}, "may use letters"),
    ({"name": "files", "command": "npx", "args": "a b"}, "args must be a list"),
    ({"name": "files", "command": "npx", "env": {"BAD NAME": "1"}}, "invalid environment variable names"),
])
async def test_add_mcp_server_is_validated(ctx, setup, actions, approvals, payload, reason):
    _, session, _ = setup
    await actions.apply(session, system_row("add_mcp_server", payload))
    assert approvals.calls == []
    (note,) = await notes(ctx, session)
    assert reason in note["text"]


async def test_add_mcp_server_asks_for_approval_without_showing_secret_values(ctx, setup, actions, approvals):
    _, session, _ = setup
    await actions.apply(session, system_row("add_mcp_server", {
        "name": "github", "command": "npx", "args": ["-y", "@mcp/github"], "env": {"GITHUB_TOKEN": "ghp_secret"}},
        request_id="req-9"))
    (call,) = approvals.calls
    assert call["action"] == "add_mcp_server"
    assert call["payload"]["env"] == {"GITHUB_TOKEN": "ghp_secret"}
    assert "GITHUB_TOKEN" in call["question"]
    assert "ghp_secret" not in call["question"]


async def test_approved_mcp_server_is_added_and_the_container_restarts(ctx, setup, waker):
    agent, session, _ = setup
    approval = DecidedApproval(json.dumps({"name": "github", "command": "npx", "args": ["-y"], "env": {}}),
                               session.id, None)
    result = await apply_add_mcp_server(ctx, approval)
    config = await agents.get_config(ctx.db, agent.id)
    assert config is not None
    assert json.loads(config.mcp_servers) == {"github": {"command": "npx", "args": ["-y"], "env": {}}}
    assert waker.stopped == [(session.id, "config changed")]
    (note,) = await notes(ctx, session)
    assert note["on_wake"] == 1
    assert "github" in note["text"]
    assert "github" in result
