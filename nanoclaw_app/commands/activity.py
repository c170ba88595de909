"""``nanoclaw activity deliveries|dropped|sessions|logs|usage``: the activity page from a terminal."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from nanoclaw_app.commands.output import json_flag, print_json, print_table
from nanoclaw_app.services import activity
from nanoclaw_app.services.context import AppServices


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``activity`` subcommands."""
    parser = sub.add_parser("activity", help="deliveries, dropped messages, container logs, usage and cost")
    views = parser.add_subparsers(dest="activity_command", required=True)
    deliveries = views.add_parser("deliveries", help="recent outbound messages and how sending them went")
    deliveries.add_argument("--state", choices=activity.DELIVERY_STATES, help="only deliveries in this state")
    deliveries.add_argument("--limit", type=int, default=50, help="how many (default 50)")
    deliveries.set_defaults(run=_deliveries)
    dropped = views.add_parser("dropped", help="messages that reached no agent, and why")
    dropped.add_argument("--limit", type=int, default=50, help="how many rows (default 50)")
    dropped.set_defaults(run=_dropped)
    sessions = views.add_parser("sessions", help="sessions and the size of their container logs")
    sessions.set_defaults(run=_sessions)
    logs = views.add_parser("logs", help="the end of a session's container log (credentials masked)")
    logs.add_argument("session", help="a session id from `nanoclaw activity sessions`")
    logs.add_argument("--kb", type=int, default=activity.DEFAULT_TAIL_KB,
                      help=f"how much of the end to show, in KB (default {activity.DEFAULT_TAIL_KB})")
    logs.set_defaults(run=_logs)
    usage = views.add_parser("usage", help="model calls and cost per agent and day")
    usage.add_argument("--days", type=int, default=activity.USAGE_DAYS,
                       help=f"how many days back (default {activity.USAGE_DAYS})")
    usage.set_defaults(run=_usage)
    for view in (deliveries, dropped, sessions, logs, usage):
        json_flag(view)


async def _deliveries(args: argparse.Namespace, services: AppServices) -> int:
    result = await activity.list_deliveries(services, state=args.state, limit=args.limit)
    if args.json:
        print_json(result)
        return 0
    print("  ".join(f"{state}: {n}" for state, n in result.counts.items()))
    print_table([asdict(d) for d in result.deliveries],
                ("updated_at", "agent_name", "destination", "preview", "state", "attempts", "last_error"),
                empty="nothing sent yet")
    return 0


async def _dropped(args: argparse.Namespace, services: AppServices) -> int:
    result = await activity.list_dropped(services, limit=args.limit)
    if args.json:
        print_json(result)
        return 0
    count = result.total_messages
    print(f"{count} message{'' if count == 1 else 's'} reached no agent")
    for reason in result.reasons:
        print(f"  {reason.messages:>6}  {reason.reason}")
    print_table([asdict(d) for d in result.dropped],
                ("last_seen", "chat", "sender", "agent_name", "reason", "count", "last_text"), empty="")
    return 0


async def _sessions(args: argparse.Namespace, services: AppServices) -> int:
    result = await activity.list_sessions(services)
    if args.json:
        print_json(result)
        return 0
    print_table([asdict(s) for s in result],
                ("session_id", "agent_name", "chat", "container_status", "last_active", "log_bytes"),
                empty="no sessions yet")
    return 0


async def _logs(args: argparse.Namespace, services: AppServices) -> int:
    tail = await activity.log_tail(services, args.session, kb=args.kb)
    if args.json:
        print_json(tail)
        return 0
    if tail.truncated:
        print(f"[last {tail.shown_bytes} of {tail.size_bytes} bytes]")
    print(tail.text if tail.size_bytes else "no log yet: the container has not run")
    return 0


async def _usage(args: argparse.Namespace, services: AppServices) -> int:
    report = await activity.usage_report(services, days=args.days)
    if args.json:
        print_json(report)
        return 0
    columns = ("day", "agent_name", "calls", "input_tokens", "output_tokens", "cache_read_tokens",
               "cache_write_tokens", "cost_usd")
    rows = [{**asdict(r), "cost_usd": f"{r.cost_usd:.4f}"} for r in report.rows]
    print_table(rows, columns, empty=f"no model calls in the last {report.days} days")
    total = report.total
    print(f"total {report.first_day}..{report.last_day} ({report.timezone}): {total.calls} calls, "
          f"${total.cost_usd:.4f}")
    today = report.today
    cap = f" of the ${today.cap_usd:.2f} daily cap" if today.cap_on else " (no daily cap)"
    print(f"today: ${today.spent_usd:.4f}{cap}" + ("; the cap is reached" if today.reached else ""))
    return 0
