"""An agent's shipped skills: all on for a new agent, single ones turned off by the owner (page, API or command),
stored so that a skill shipped later starts on, and refused in words when the name is not a skill."""

from __future__ import annotations

import json

import pytest

from nanoclaw_app.cli import main
from nanoclaw_app.core.approvals.service import ApprovalService
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.errors import UserError
from nanoclaw_app.host_state import HostState
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.services import agents as svc
from nanoclaw_app.services.agents.skills import runner_value, skills_off
from nanoclaw_app.services.auth import WebAuth
from nanoclaw_app.services.context import AppServices

SHIPPED = ["credentials", "files", "formatting", "memory", "scheduling", "self-customize", "web", "welcome"]


@pytest.fixture
def services(ctx: CoreContext) -> AppServices:
    return AppServices(ctx=ctx, secrets=SecretStore(None), approvals=ApprovalService(ctx), auth=WebAuth(ctx.db),
                       state=HostState(), live=True)


async def test_a_new_agent_has_every_shipped_skill_on_with_a_one_line_description(services: AppServices) -> None:
    agent = await svc.create_agent(services, "Nano")
    view = await svc.get_skills(services, agent.id)
    assert [(s.name, s.enabled) for s in view.skills] == [(name, True) for name in SHIPPED]
    described = {s.name: s.description for s in view.skills}
    assert described["welcome"].startswith("The first conversation with a new person")
    assert described["credentials"] == ("API tokens and passwords for other services - added by the owner in the app,"
                                        " never asked for in chat.")
    assert view.own_folder == str(services.settings.paths.agents / "nano" / "skills")


async def test_turning_skills_off_is_stored_announced_and_shown(services: AppServices, ctx: CoreContext) -> None:
    agent = await svc.create_agent(services, "Nano")
    async with ctx.events.subscribe() as queue:
        saved = await svc.set_skills(services, agent.id, ["web", " welcome ", "web"])
        event = await queue.get()
    assert (event.kind, event.data) == ("agent.config_changed", {"agent_group_id": agent.id, "change": "skills"})
    assert [s.name for s in saved.skills if not s.enabled] == ["web", "welcome"]
    config = await agents_db.get_config(ctx.db, agent.id) or pytest.fail("no config")
    assert json.loads(config.skills) == {"off": ["web", "welcome"]}
    assert runner_value(config.skills) == "web,welcome"
    again = await svc.get_skills(services, agent.id)
    assert [s.name for s in again.skills if not s.enabled] == ["web", "welcome"]

    back_on = await svc.set_skills(services, agent.id, [])
    assert all(s.enabled for s in back_on.skills)
    config = await agents_db.get_config(ctx.db, agent.id) or pytest.fail("no config")
    assert runner_value(config.skills) == ""


async def test_an_unknown_skill_is_refused_and_nothing_changes(services: AppServices) -> None:
    agent = await svc.create_agent(services, "Nano")
    await svc.set_skills(services, agent.id, ["web"])
    with pytest.raises(UserError) as refused:
        await svc.set_skills(services, agent.id, ["files", "weather"])
    assert "there is no shipped skill called 'weather'; the skills are: credentials, files," in str(refused.value)
    assert [s.name for s in (await svc.get_skills(services, agent.id)).skills if not s.enabled] == ["web"]


def test_every_stored_form_of_the_column_reads() -> None:
    assert skills_off('"all"', SHIPPED) == []
    assert skills_off("", SHIPPED) == []
    assert skills_off('{"off": ["web"]}', SHIPPED) == ["web"]
    # the older form lists what is on: everything else is off
    assert skills_off('["memory", "welcome"]', SHIPPED) == [n for n in SHIPPED if n not in ("memory", "welcome")]
    assert skills_off("{not json", SHIPPED) == []
    assert skills_off('{"off": "web"}', SHIPPED) == []


def test_the_command_lists_turns_off_and_on(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["agents", "create", "Nano"]) == 0
    capsys.readouterr()
    assert main(["agents", "skills", "Nano", "--off", "web,welcome"]) == 0
    out = capsys.readouterr().out
    assert "[off] web" in out
    assert "[off] welcome" in out
    assert "[on ] memory" in out
    assert "/skills/<name>/SKILL.md" in out
    assert main(["agents", "skills", "Nano", "--on", "web", "--json"]) == 0
    view = json.loads(capsys.readouterr().out)
    assert [s["name"] for s in view["skills"] if not s["enabled"]] == ["welcome"]
    assert main(["agents", "skills", "Nano", "--off", "weather"]) == 1
    assert "there is no shipped skill called 'weather'" in capsys.readouterr().err
