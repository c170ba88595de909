"""An agent's internet access: "open" or "only these sites", checked by the same function the proxy's policy matches
with, announced so the proxy reloads, and shown wherever the agent is shown."""

from __future__ import annotations

import pytest

from nanoclaw_app.core.approvals.service import ApprovalService
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.egress.policy import site_allows
from nanoclaw_app.errors import NotFound, UserError
from nanoclaw_app.host_state import HostState
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.services import agents as svc
from nanoclaw_app.services.agents.internet import access_of
from nanoclaw_app.services.auth import WebAuth
from nanoclaw_app.services.context import AppServices


@pytest.fixture
def services(ctx: CoreContext) -> AppServices:
    return AppServices(ctx=ctx, secrets=SecretStore(None), approvals=ApprovalService(ctx), auth=WebAuth(ctx.db),
                       state=HostState(), live=True)


async def test_a_new_agent_is_open(services: AppServices) -> None:
    agent = await svc.create_agent(services, "Nano")
    assert (agent.internet_mode, agent.internet_sites) == ("open", [])
    access = await svc.get_internet(services, agent.id)
    assert (access.mode, access.sites) == ("open", [])


async def test_only_these_sites_is_saved_normalised_and_announced(services: AppServices, ctx: CoreContext) -> None:
    agent = await svc.create_agent(services, "Nano")
    async with ctx.events.subscribe() as queue:
        saved = await svc.set_internet(services, agent.id, "sites",
                                       ["https://GitHub.com/anthropics", "", "  pypi.org ", "github.com"])
        event = await queue.get()
    assert (event.kind, event.data) == ("agent.egress_changed", {"agent_group_id": agent.id})
    assert (saved.mode, saved.sites) == ("sites", ["github.com", "pypi.org"])
    shown = await svc.get_agent(services, agent.id)
    assert (shown.internet_mode, shown.internet_sites) == ("sites", ["github.com", "pypi.org"])
    stored = access_of(await agents_db.get(ctx.db, agent.id) or pytest.fail("agent gone"))
    assert site_allows(stored.sites, "api.github.com")
    assert not site_allows(stored.sites, "npmjs.com")


async def test_every_bad_line_is_named_and_nothing_is_saved(services: AppServices) -> None:
    agent = await svc.create_agent(services, "Nano")
    await svc.set_internet(services, agent.id, "sites", ["github.com"])
    with pytest.raises(UserError) as refused:
        await svc.set_internet(services, agent.id, "sites", ["pypi.org", "not a site", "ok.org", "exa_mple.com"])
    lines = str(refused.value).splitlines()
    assert [line.split(":")[0] for line in lines] == ["Line 2", "Line 4"]
    assert "'not a site' is not a site: write a domain like github.com" in lines[0]
    assert (await svc.get_internet(services, agent.id)).sites == ["github.com"]


async def test_only_these_sites_with_no_sites_is_allowed_and_reaches_nothing(services: AppServices) -> None:
    agent = await svc.create_agent(services, "Nano")
    saved = await svc.set_internet(services, agent.id, "sites", [])
    assert (saved.mode, saved.sites) == ("sites", [])
    assert not site_allows(saved.sites, "github.com")


async def test_open_keeps_the_list_for_switching_back(services: AppServices) -> None:
    agent = await svc.create_agent(services, "Nano")
    await svc.set_internet(services, agent.id, "sites", ["github.com"])
    reopened = await svc.set_internet(services, agent.id, "open", ["github.com"])
    assert (reopened.mode, reopened.sites) == ("open", ["github.com"])


async def test_an_unknown_mode_or_agent_is_refused(services: AppServices) -> None:
    agent = await svc.create_agent(services, "Nano")
    with pytest.raises(UserError, match='"open" or "sites"'):
        await svc.set_internet(services, agent.id, "closed", [])
    with pytest.raises(NotFound):
        await svc.set_internet(services, "ag-gone", "open", [])
    with pytest.raises(UserError, match="at most"):
        await svc.set_internet(services, agent.id, "sites", [f"site{n}.org" for n in range(svc.MAX_SITES + 1)])


async def test_a_damaged_site_list_reaches_nothing_rather_than_everything(services: AppServices,
                                                                          ctx: CoreContext) -> None:
    agent = await svc.create_agent(services, "Nano")
    await svc.set_internet(services, agent.id, "sites", ["github.com"])
    await ctx.db.execute("UPDATE agent_groups SET egress_sites_json = 'not json' WHERE id = ?", (agent.id,))
    access = await svc.get_internet(services, agent.id)
    assert (access.mode, access.sites) == ("sites", [])
