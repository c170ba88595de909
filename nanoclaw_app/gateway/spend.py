"""Today's model spending, kept in memory so the cap check on every call costs no query.

"Today" is the calendar day in the user's timezone (``settings.timezone``): the cap resets at their midnight, which is
what "daily" means to them. The total is loaded from the ``usage`` table at start (so a restart does not reset it) and
then grows with every recorded call.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from nanoclaw_app.db import usage as usage_db
from nanoclaw_app.db.database import Database
from nanoclaw_app.timeutil import iso

Clock = Callable[[], datetime]


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SpendTracker:
    """Spend since the user's last midnight, the daily cap (0 = off) and whether today's notice went out."""

    def __init__(self, cap_usd: float, tz: ZoneInfo, *, clock: Clock = _utcnow) -> None:
        self._cap = max(cap_usd, 0.0)
        self._tz = tz
        self._clock = clock
        self._spent = 0.0
        self._day_start = self._day_end = 0.0
        self._notified = False
        self._roll(self._clock().timestamp())

    async def load(self, db: Database) -> None:
        """Start from what the ``usage`` table says was spent since local midnight."""
        now = self._clock()
        self._roll(now.timestamp())
        self._spent = await usage_db.spend_since(db, iso(datetime.fromtimestamp(self._day_start, UTC)))

    @property
    def cap_usd(self) -> float:
        """The daily cap in USD; 0 means no cap."""
        return self._cap

    @cap_usd.setter
    def cap_usd(self, value: float) -> None:
        self._cap = max(value, 0.0)
        self._notified = False

    @property
    def spent_usd(self) -> float:
        """USD spent since the user's last midnight."""
        self._roll(self._clock().timestamp())
        return self._spent

    def add(self, cost_usd: float) -> None:
        """Count a recorded call toward today."""
        self._roll(self._clock().timestamp())
        self._spent += cost_usd

    def reached(self) -> bool:
        """Whether calls must be refused now (the hot-path check: two float comparisons on most calls)."""
        if not self._cap:
            return False
        self._roll(self._clock().timestamp())
        return self._spent >= self._cap

    def first_notice_today(self) -> bool:
        """True exactly once per day once the cap is reached, so the user is told once, not on every refused call."""
        if self._notified or not self.reached():
            return False
        self._notified = True
        return True

    def resets_at(self) -> datetime:
        """The user's next midnight, in their timezone."""
        self._roll(self._clock().timestamp())
        return datetime.fromtimestamp(self._day_end, self._tz)

    def message(self) -> str:
        """The refusal text for user and agent: the limit, when it resets and where to change it."""
        now = self._clock()
        left = max(int(self.resets_at().timestamp() - now.timestamp()), 0)
        hours, minutes = divmod((left + 59) // 60, 60)
        return (
            f"The daily model spending limit (${self._cap:.2f}) is reached: ${self.spent_usd:.2f} was spent today. "
            f"Agents can use the model again after midnight ({self._tz.key} time, in {hours} h {minutes} min). "
            "To change the limit, open the NanoClaw app → Settings → Daily spend cap "
            "(setting daily_spend_cap_usd; 0 turns it off)."
        )

    def _roll(self, now: float) -> None:
        if self._day_start <= now < self._day_end:
            return
        local = datetime.fromtimestamp(now, self._tz)
        start = datetime.combine(local.date(), time(0), tzinfo=self._tz)
        end = datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=self._tz)
        self._day_start, self._day_end = start.timestamp(), end.timestamp()
        self._spent = 0.0
        self._notified = False
