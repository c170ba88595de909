"""The internet activity log: the batch the proxy's writer hands over, newest-first lists per agent and kind, the
30-day purge, and the view the Activity page shows — names resolved, hostile hosts and paths made harmless text."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from nanoclaw_app.core.approvals.service import ApprovalService
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import egress_events
from nanoclaw_app.db import users as users_db
from nanoclaw_app.db.database import Database
from nanoclaw_app.errors import UserError
from nanoclaw_app.host_state import HostState
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.services import activity
from nanoclaw_app.services.auth import WebAuth
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.timeutil import iso, utcnow


def row(**values: Any) -> dict[str, Any]:
    """A connection to pypi.org by default; only what the test cares about is given."""
    return {"at": iso(utcnow()), "kind": "connect", "host": "pypi.org", "port": 443, "decision": "allowed",
            **values}


@pytest.fixture
def services(ctx: CoreContext) -> AppServices:
    return AppServices(ctx=ctx, secrets=SecretStore(None), approvals=ApprovalService(ctx), auth=WebAuth(ctx.db),
                       state=HostState(), live=True)


async def test_a_batch_is_stored_whole_and_listed_newest_first(db: Database) -> None:
    await egress_events.add(db, [row(host="first.org"), row(host="second.org", agent_group_id="ag-1",
                                                             session_id="s-1")])
    newest, oldest = await egress_events.recent(db)
    assert (newest.host, oldest.host) == ("second.org", "first.org")
    assert (newest.agent_group_id, newest.session_id, newest.credential_name, newest.path) == ("ag-1", "s-1", "", "")
    assert (oldest.agent_group_id, oldest.status_code, oldest.reason) == (None, None, "")


async def test_a_misspelt_column_is_refused_and_nothing_of_the_batch_is_kept(db: Database) -> None:
    with pytest.raises(ValueError, match="statuscode"):
        await egress_events.add(db, [row(), row(statuscode=200)])
    assert await egress_events.recent(db) == []


async def test_the_list_narrows_to_one_agent_and_one_kind_and_pages_back(db: Database) -> None:
    await egress_events.add(db, [
        row(agent_group_id="ag-a", host="a1.org"),
        row(agent_group_id="ag-b", host="b1.org"),
        row(agent_group_id="ag-a", kind="request", method="GET", path="/x", credential_name="GitHub",
            host="api.github.com", status_code=200),
        row(agent_group_id="ag-a", host="a2.org"),
    ])
    assert [e.host for e in await egress_events.recent(db, agent_group_id="ag-a")] == [
        "a2.org", "api.github.com", "a1.org"]
    assert [e.host for e in await egress_events.recent(db, agent_group_id="ag-a", kind="request")] == [
        "api.github.com"]
    first_page = await egress_events.recent(db, limit=2)
    older = await egress_events.recent(db, limit=2, before_id=first_page[-1].id)
    assert [e.host for e in first_page + older] == ["a2.org", "api.github.com", "b1.org", "a1.org"]


async def test_lines_older_than_thirty_days_are_purged(db: Database) -> None:
    now = utcnow()
    await egress_events.add(db, [
        row(host="old.org", at=iso(now - timedelta(days=31))),
        row(host="recent.org", at=iso(now - timedelta(days=29))),
    ])
    assert await egress_events.purge_old(db) == 1
    assert [e.host for e in await egress_events.recent(db)] == ["recent.org"]


async def test_the_view_names_the_agent_and_the_approver_and_says_where_it_went(services: AppServices,
                                                                                db: Database) -> None:
    nano = await agents_db.create(db, "Nano")
    await users_db.upsert(db, "telegram:42", "telegram", "Ana")
    await egress_events.add(db, [
        row(agent_group_id=nano.id, host="192.168.1.1", port=80, decision="refused",
            reason="on your home network"),
        row(agent_group_id=nano.id, kind="request", credential_name="GitHub", method="GET",
            host="api.github.com", path="/repos/x", decision="approved", approved_by="telegram:42",
            status_code=200),
        row(agent_group_id=nano.id, kind="request", credential_name="Local", method="POST", host="127.0.0.1",
            port=8443, path="/v1", decision="denied", approved_by="telegram:99", status_code=403),
    ])
    listed = await activity.list_egress(services)
    denied, approved, refused = listed.events
    assert (approved.agent_name, approved.credential_name, approved.method, approved.target, approved.approved_by,
            approved.status_code) == ("Nano", "GitHub", "GET", "api.github.com/repos/x", "Ana", 200)
    assert (refused.target, refused.decision, refused.reason) == ("192.168.1.1:80", "refused", "on your home network")
    assert (denied.target, denied.approved_by) == ("127.0.0.1:8443/v1", "telegram:99")  # unknown person: their id
    assert [(a.id, a.name) for a in listed.agents] == [(nano.id, "Nano")]
    assert listed.older is None
    assert [e.target for e in (await activity.list_egress(services, kind="request")).events] == [
        "127.0.0.1:8443/v1", "api.github.com/repos/x"]


async def test_the_view_pages_back_through_older_lines(services: AppServices, db: Database) -> None:
    await egress_events.add(db, [row(host=f"site{n}.org") for n in range(5)])
    first = await activity.list_egress(services, limit=3)
    assert [e.target for e in first.events] == ["site4.org:443", "site3.org:443", "site2.org:443"]
    assert first.older is not None
    rest = await activity.list_egress(services, limit=3, before=first.older)
    assert ([e.target for e in rest.events], rest.older) == (["site1.org:443", "site0.org:443"], None)


async def test_what_the_container_sent_is_shown_as_plain_visible_text(services: AppServices, db: Database) -> None:
    await egress_events.add(db, [
        row(kind="request", method="GET", host="evil\u202egro.com", path="/" + "a" * 5000 + "\x1b[31m"),
    ])
    (shown,) = (await activity.list_egress(services)).events
    assert "\u202e" not in shown.target
    assert "evil\\u202egro.com" in shown.target  # the override is written out, so the name cannot pose as another
    assert len(shown.target) < 700
    assert shown.target.endswith("…")


async def test_an_unknown_kind_is_refused_in_words(services: AppServices) -> None:
    with pytest.raises(UserError, match="request or connect"):
        await activity.list_egress(services, kind="everything")
