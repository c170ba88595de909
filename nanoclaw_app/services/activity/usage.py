"""Model usage and cost per agent and day on the user's clock, and today's spend against the daily cap.

"Today" is the user's calendar day (``settings.timezone``), the same one the daily spend cap counts, so the page and
the cap never disagree about what was spent today.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from nanoclaw_app.db import usage as usage_db
from nanoclaw_app.db.usage import UsageBucket
from nanoclaw_app.errors import UserError
from nanoclaw_app.services.activity.shared import load_directory
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.timeutil import iso, utcnow

USAGE_DAYS = 30


@dataclass
class UsageTotal:
    """Calls, tokens and cost of one agent (or of everything) over a span."""

    agent_group_id: str
    agent_name: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0

    def add(self, other: UsageTotal | UsageBucket) -> None:
        """Sum ``other`` (another total, or one stored quarter hour) into this total."""
        self.calls += other.calls
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens
        self.cost_usd += other.cost_usd


@dataclass
class UsageRow(UsageTotal):
    """One agent on one day (the user's calendar day)."""

    day: str = ""


@dataclass
class AgentCost:
    """One agent's share of a day's bar."""

    agent_group_id: str
    agent_name: str
    cost_usd: float


@dataclass
class DayBar:
    """One day of the chart: its cost, split by agent."""

    day: str
    cost_usd: float
    calls: int
    agents: list[AgentCost] = field(default_factory=list)


@dataclass
class SpendToday:
    """Today's spend against the daily cap (0 = no cap)."""

    day: str
    spent_usd: float
    cap_usd: float
    cap_on: bool
    used_percent: float | None
    reached: bool
    resets_at: str


@dataclass
class UsageReport:
    """Usage and cost per agent and day over the last ``days`` days, in the user's timezone."""

    timezone: str
    days: int
    first_day: str
    last_day: str
    rows: list[UsageRow]
    """Newest day first, then by agent name."""
    agents: list[UsageTotal]
    """Per agent over the whole span, the most expensive first."""
    total: UsageTotal
    daily: list[DayBar]
    """Every day of the span, oldest first (zero days included, so the chart has no gaps)."""
    today: SpendToday


async def usage_report(services: AppServices, *, days: int = USAGE_DAYS) -> UsageReport:
    """Sum the ``usage`` rows per agent and local day; today's part is what the daily cap counts."""
    if not 1 <= days <= 366:
        raise UserError(f"show between 1 and 366 days of usage, not {days}")
    ctx = services.ctx
    tz = services.settings.tz
    now = utcnow()
    today = now.astimezone(tz).date()
    first = today - timedelta(days=days - 1)
    directory = await load_directory(ctx.db)
    cells: dict[tuple[date, str], UsageRow] = {}
    for bucket in await usage_db.buckets_since(ctx.db, iso(_midnight(first, tz))):
        agent_id = bucket.agent_group_id
        day = bucket.start.astimezone(tz).date()
        if day < first:
            continue
        cell = cells.get((day, agent_id))
        if cell is None:
            cell = cells[(day, agent_id)] = UsageRow(agent_group_id=agent_id, agent_name=directory.agent(agent_id)
                                                     or "(no agent)", day=day.isoformat())
        cell.add(bucket)
    rows = sorted(cells.values(), key=lambda r: r.agent_name)
    rows.sort(key=lambda r: r.day, reverse=True)  # newest day first, agents A-Z within a day (the sort is stable)
    per_agent: dict[str, UsageTotal] = {}
    total = UsageTotal(agent_group_id="", agent_name="")
    for row in rows:
        agent_total = per_agent.setdefault(row.agent_group_id, UsageTotal(row.agent_group_id, row.agent_name))
        agent_total.add(row)
        total.add(row)
    daily = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        of_day = sorted((r for r in rows if r.day == day.isoformat()), key=lambda r: r.agent_name)
        daily.append(DayBar(day=day.isoformat(), cost_usd=sum(r.cost_usd for r in of_day),
                            calls=sum(r.calls for r in of_day),
                            agents=[AgentCost(r.agent_group_id, r.agent_name, r.cost_usd) for r in of_day]))
    cap = services.settings.daily_spend_cap_usd
    spent = daily[-1].cost_usd
    return UsageReport(
        timezone=services.settings.timezone, days=days, first_day=first.isoformat(), last_day=today.isoformat(),
        rows=rows, agents=sorted(per_agent.values(), key=lambda t: (-t.cost_usd, t.agent_name)), total=total,
        daily=daily,
        today=SpendToday(
            day=today.isoformat(), spent_usd=spent, cap_usd=cap, cap_on=cap > 0,
            used_percent=round(100 * spent / cap, 1) if cap > 0 else None, reached=cap > 0 and spent >= cap,
            resets_at=_midnight(today + timedelta(days=1), tz).astimezone(tz).strftime("%Y-%m-%d %H:%M"),
        ),
    )


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    """The start of ``day`` on the user's clock, in UTC."""
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)
