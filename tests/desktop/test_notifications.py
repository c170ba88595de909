"""Desktop notifications: what deserves one, at most one per cause every few minutes, and the tray's state in words
from the running host."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from nanoclaw_app.core.events import Event
from nanoclaw_app.db import agents, app_state
from nanoclaw_app.db import approvals as approvals_db
from nanoclaw_app.desktop.notifications import Notifications, Throttle
from nanoclaw_app.desktop.status import Alert, Status, StatusWatcher, alert_for, read_status
from nanoclaw_app.host import Host
from nanoclaw_app.web.controllers.session import WIZARD_DONE


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Shown:
    """A notifier that remembers what it was asked to show."""

    def __init__(self) -> None:
        self.titles: list[str] = []

    def show(self, title: str, body: str) -> None:
        self.titles.append(title)


def now(fn: Callable[[], None]) -> None:
    fn()


APPROVAL = Alert("approval", "NanoClaw needs your answer", "A request is waiting for your approval.")
UNLINKED = Alert("channel:whatsapp:logged_out", "WhatsApp needs attention", "WhatsApp is unlinked.")


def test_one_notification_per_cause_within_the_interval() -> None:
    clock = Clock()
    shown = Shown()
    notifications = Notifications(shown, now, throttle=Throttle(300, clock=clock))
    assert notifications.alert(APPROVAL) is True
    clock.now += 299
    assert notifications.alert(APPROVAL) is False, "the same cause twice within five minutes"
    assert notifications.alert(UNLINKED) is True, "another cause is not held back"
    clock.now += 1
    assert notifications.alert(APPROVAL) is True, "after the interval the cause may notify again"
    assert shown.titles == [APPROVAL.title, UNLINKED.title, APPROVAL.title]


def test_a_failing_notification_service_does_not_break_the_caller() -> None:
    class Broken:
        def show(self, title: str, body: str) -> None:
            raise OSError("the notification service went away")

    assert Notifications(Broken(), now).alert(APPROVAL) is True
    assert Notifications(None, now, unavailable="no session bus").alert(APPROVAL) is False


def test_what_needs_the_user_becomes_a_notification() -> None:
    assert alert_for(Event("approval.requested", {"approval_id": "a1"})) == APPROVAL.__class__(
        "approval", "NanoClaw needs your answer", "A request is waiting for your approval. Open NanoClaw to answer it.")
    assert alert_for(Event("sender.approval_requested", {})).cause == "approval"  # type: ignore[union-attr]
    unlinked = alert_for(Event("channel.status", {"channel_type": "whatsapp", "state": "logged_out",
                                                  "detail": "WhatsApp is unlinked: logged out on the phone."}))
    assert unlinked == Alert("channel:whatsapp:logged_out", "WhatsApp needs attention",
                             "WhatsApp is unlinked: logged out on the phone.")
    cap = alert_for(Event("gateway.cap_reached", {"message": "Today's spend reached the $5.00 cap."}))
    assert cap == Alert("spend_cap", "Today's spending limit is reached", "Today's spend reached the $5.00 cap.")
    assert alert_for(Event("channel.status", {"channel_type": "whatsapp", "state": "connected"})) is None
    assert alert_for(Event("chat.message", {})) is None


async def test_the_tray_state_follows_the_host(web_host: Host) -> None:
    services = web_host.services
    assert (await read_status(services)).details[0] == "Setup is not finished: open NanoClaw to finish it"
    await app_state.put(web_host.db, WIZARD_DONE, "1")
    assert await read_status(services) == Status("running", "Running")

    agent = await agents.create(web_host.db, "Nano")
    await approvals_db.create_approval(
        web_host.db, approval_id="appr-1", session_id=None, action="install_packages", payload={"apt": ["jq"]},
        agent_group_id=agent.id, approver_user_id="webchat:owner", channel_type="webchat", platform_id="owner",
        title="Install jq?", options_json="[]", expires_at="2999-01-01T00:00:00Z",
    )
    web_host.state.components["channel:whatsapp"] = "logged_out"
    status = await read_status(services)
    assert status.state == "attention"
    assert status.details == ("1 request waits for your answer",
                              "WhatsApp is unlinked: link it again on the Channels page")


async def test_the_watcher_reports_a_new_state_and_an_alert_for_an_unlinked_whatsapp(web_host: Host) -> None:
    await app_state.put(web_host.db, WIZARD_DONE, "1")
    statuses: list[Status] = []
    alerts: list[Alert] = []
    watcher = StatusWatcher(web_host.services, on_status=statuses.append, on_alert=alerts.append)
    await watcher.start()
    try:
        assert statuses == [Status("running", "Running")]
        web_host.state.components["channel:whatsapp"] = "logged_out"
        web_host.events.publish("channel.status", channel_type="whatsapp", state="logged_out",
                                detail="WhatsApp is unlinked: the phone removed this computer.")
        async with asyncio.timeout(10):
            while len(statuses) < 2:
                await asyncio.sleep(0.05)
    finally:
        await watcher.stop()
    assert statuses[-1].state == "attention"
    assert [a.cause for a in alerts] == ["channel:whatsapp:logged_out"]
