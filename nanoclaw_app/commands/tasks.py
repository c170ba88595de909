"""``nanoclaw tasks list|pause|resume|cancel``: the tasks page from a terminal (same service layer)."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import asdict

from nanoclaw_app.commands.output import json_flag, print_json, print_table
from nanoclaw_app.services import tasks
from nanoclaw_app.services.context import AppServices

_COLUMNS = ("id", "agent_name", "chat", "prompt", "schedule", "next_run", "status")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``tasks`` subcommands."""
    parser = sub.add_parser("tasks", help="scheduled tasks: list, pause, resume, cancel")
    actions = parser.add_subparsers(dest="tasks_command", required=True)
    ls = actions.add_parser("list", help="every agent's scheduled tasks, soonest first")
    ls.add_argument("--status", choices=tasks.STATUSES, help="only pending or only paused tasks")
    json_flag(ls)
    ls.set_defaults(run=_list)
    for name, fn, text in (
        ("pause", tasks.pause_task, "hold a task until it is resumed"),
        ("resume", tasks.resume_task, "release a paused task (it fires at once if its time has passed)"),
        ("cancel", tasks.cancel_task, "end a task for good, with every future run"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("task_id", help="the id `nanoclaw tasks list` shows")
        action.add_argument("--session", help="the session id, when the same task id is in several sessions")
        json_flag(action)
        action.set_defaults(run=_changer(fn))


async def _list(args: argparse.Namespace, services: AppServices) -> int:
    result = await tasks.list_tasks(services, status=args.status)
    if args.json:
        print_json(result)
        return 0
    rows = [{**asdict(t), "schedule": t.recurrence or "once"} for t in result.tasks]
    print_table(rows, _COLUMNS, empty="no scheduled tasks")
    if result.tasks:
        print(f"(times in {result.timezone})")
    for problem in result.problems:
        print(f"warning: {problem}")
    return 1 if result.problems else 0


Change = Callable[..., Awaitable[tasks.TaskView]]


def _changer(fn: Change) -> Callable[[argparse.Namespace, AppServices], Awaitable[int]]:
    async def run(args: argparse.Namespace, services: AppServices) -> int:
        view = await fn(services, args.task_id, session_id=args.session)
        if args.json:
            print_json(view)
        else:
            print(f"task {view.id} ({view.agent_name}: {view.prompt}) is now {view.status}")
        return 0

    return run
