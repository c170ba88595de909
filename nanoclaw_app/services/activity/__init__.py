"""What happened, for the activity page and ``nanoclaw activity``: deliveries, dropped messages, logs, usage, internet.

Everything here reads; nothing changes state. Times are stored in UTC and shown in the user's timezone
(``settings.timezone``), the same clock the daily spend cap and cron schedules use, so "today" means one thing
everywhere. Names (agents, chats) are resolved in one place so the page and the CLI print the same labels.

Callers import the package (``from nanoclaw_app.services import activity``); the modules split it by what they show.
"""

from nanoclaw_app.services.activity.deliveries import DELIVERY_STATES, DeliveryList, DeliveryView, list_deliveries
from nanoclaw_app.services.activity.dropped import DroppedList, DroppedView, ReasonCount, list_dropped
from nanoclaw_app.services.activity.egress import EGRESS_KINDS, AgentChoice, EgressList, EgressView, list_egress
from nanoclaw_app.services.activity.logs import (
    DEFAULT_TAIL_KB,
    MAX_TAIL_KB,
    LogTail,
    SessionView,
    list_sessions,
    log_tail,
    mask_secrets,
    render_log,
)
from nanoclaw_app.services.activity.shared import Directory, load_directory, local_time
from nanoclaw_app.services.activity.timeline import TimelineEntry, session_timeline
from nanoclaw_app.services.activity.usage import (
    USAGE_DAYS,
    AgentCost,
    DayBar,
    SpendToday,
    UsageReport,
    UsageRow,
    UsageTotal,
    usage_report,
)

__all__ = [
    "DEFAULT_TAIL_KB",
    "DELIVERY_STATES",
    "EGRESS_KINDS",
    "MAX_TAIL_KB",
    "USAGE_DAYS",
    "AgentChoice",
    "AgentCost",
    "DayBar",
    "DeliveryList",
    "DeliveryView",
    "Directory",
    "DroppedList",
    "DroppedView",
    "EgressList",
    "EgressView",
    "LogTail",
    "ReasonCount",
    "SessionView",
    "SpendToday",
    "TimelineEntry",
    "UsageReport",
    "UsageRow",
    "UsageTotal",
    "list_deliveries",
    "list_dropped",
    "list_egress",
    "list_sessions",
    "load_directory",
    "local_time",
    "log_tail",
    "mask_secrets",
    "render_log",
    "session_timeline",
    "usage_report",
]
