"""Who is asked to approve, and which of them a card can actually reach (reference §4.3, picks.test)."""

from __future__ import annotations

from dataclasses import dataclass

from nanoclaw_app.core.approvals.picks import pick_approval_delivery, pick_approver
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.db import agents, users
from nanoclaw_app.db.database import Database
from tests.fakes.channel import FakeChannel


@dataclass
class NoDmChannel(FakeChannel):
    """A platform that cannot open a DM with anyone."""

    async def open_dm(self, user_handle: str) -> str | None:
        return None


async def _user(db: Database, user_id: str, role: str | None = None, agent: str | None = None) -> str:
    await users.upsert(db, user_id, user_id.split(":", 1)[0], user_id)
    if role is not None:
        await users.grant(db, user_id, role, agent)
    return user_id


async def test_approvers_are_scoped_admins_then_global_admins_then_owners(db: Database) -> None:
    helper = await agents.create(db, "Helper")
    other = await agents.create(db, "Other")
    await _user(db, "test:owner", "owner")
    await _user(db, "test:global", "admin")
    await _user(db, "test:scoped", "admin", helper.id)
    await _user(db, "test:elsewhere", "admin", other.id)

    assert await pick_approver(db, helper.id) == ["test:scoped", "test:global", "test:owner"]


async def test_a_user_holding_several_roles_is_asked_once_at_their_closest_role(db: Database) -> None:
    helper = await agents.create(db, "Helper")
    await _user(db, "test:boss", "owner")
    await users.grant(db, "test:boss", "admin", helper.id)
    await users.grant(db, "test:boss", "admin")
    await _user(db, "test:owner2", "owner")

    assert await pick_approver(db, helper.id) == ["test:boss", "test:owner2"]


async def test_without_an_agent_only_global_admins_and_owners_are_asked(db: Database) -> None:
    helper = await agents.create(db, "Helper")
    await _user(db, "test:owner", "owner")
    await _user(db, "test:scoped", "admin", helper.id)
    await _user(db, "test:global", "admin")

    assert await pick_approver(db, None) == ["test:global", "test:owner"]
    assert await pick_approver(db, helper.id) != []


async def test_nobody_to_ask_gives_an_empty_list(db: Database) -> None:
    helper = await agents.create(db, "Helper")
    await _user(db, "test:member")
    await users.add_member(db, "test:member", helper.id)

    assert await pick_approver(db, helper.id) == []


async def test_delivery_prefers_an_approver_on_the_origin_channel(ctx: CoreContext) -> None:
    ctx.channels.add(FakeChannel(channel_type="tg"))
    await _user(ctx.db, "test:first", "owner")
    await _user(ctx.db, "tg:second", "owner")

    picked = await pick_approval_delivery(ctx, ["test:first", "tg:second"], "tg")

    assert picked is not None
    approver, chat = picked
    assert approver == "tg:second"
    assert (chat.channel_type, chat.platform_id, chat.is_group) == ("tg", "second", 0)


async def test_delivery_falls_back_to_the_first_reachable_approver(ctx: CoreContext) -> None:
    ctx.channels.add(NoDmChannel(channel_type="nodm"))
    await _user(ctx.db, "nodm:unreachable", "owner")
    await _user(ctx.db, "gone:nochannel", "owner")
    await _user(ctx.db, "test:reachable", "owner")

    picked = await pick_approval_delivery(ctx, ["nodm:unreachable", "gone:nochannel", "test:reachable"], "nodm")

    assert picked is not None
    assert picked[0] == "test:reachable"
    assert picked[1].platform_id == "reachable"


async def test_delivery_keeps_approver_order_when_no_one_shares_the_origin_channel(ctx: CoreContext) -> None:
    ctx.channels.add(FakeChannel(channel_type="tg"))
    await _user(ctx.db, "tg:scoped", "admin")
    await _user(ctx.db, "test:owner", "owner")

    picked = await pick_approval_delivery(ctx, ["tg:scoped", "test:owner"], "whatsapp")

    assert picked is not None
    assert picked[0] == "tg:scoped"


async def test_delivery_is_none_when_no_approver_is_reachable(ctx: CoreContext) -> None:
    ctx.channels.add(NoDmChannel(channel_type="nodm"))
    await _user(ctx.db, "nodm:a", "owner")
    await _user(ctx.db, "gone:b", "owner")

    assert await pick_approval_delivery(ctx, ["nodm:a", "gone:b"], "test") is None
    assert await pick_approval_delivery(ctx, [], "test") is None
