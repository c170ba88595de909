"""UTC timestamps as stored in every table (ISO 8601 with offset), and tolerant parsing of older forms."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """Format for storage: ISO 8601, UTC, millisecond precision (sorts as text)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_iso() -> str:
    """``iso(utcnow())``."""
    return iso(utcnow())


def later_iso(seconds: float) -> str:
    """The stored form of now + ``seconds``."""
    return iso(utcnow() + timedelta(seconds=seconds))


def parse_utc(text: str) -> datetime:
    """Parse a stored timestamp; one without a timezone (SQLite's ``datetime('now')``) is read as UTC."""
    value = text.strip().replace(" ", "T")
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
