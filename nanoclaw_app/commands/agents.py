"""``nanoclaw agents ...``: every action of the agents page, on the same service layer.

An agent is named by id, folder or name. Settings, memory, mounts, packages and MCP servers are written straight to
the database and the agent's folder (the running host reads them when a container starts). Restart, delete and
internet access need the running host, which owns the containers and the egress proxy: when one runs, the command asks
it over its loopback API with a short-lived session of its own; when none runs, nothing runs to tell and the command
works here.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from nanoclaw_app.commands.host_api import call_running_host
from nanoclaw_app.commands.output import json_flag, print_json, print_table
from nanoclaw_app.errors import NotFound, UserError
from nanoclaw_app.services import agents as svc
from nanoclaw_app.services.context import AppServices

Run = Callable[[argparse.Namespace, AppServices], Awaitable[int]]
if TYPE_CHECKING:
    SubParsers = argparse._SubParsersAction[argparse.ArgumentParser]


def register(sub: SubParsers) -> None:
    """Add the ``agents`` subcommands."""
    parser = sub.add_parser("agents", help="agents: create, settings, memory, skills, mounts, packages, MCP, restart")
    cmds = parser.add_subparsers(dest="agents_command", required=True, metavar="COMMAND")

    _leaf(cmds, "list", "list agents with their model, chats and running containers", _list)
    show = _leaf(cmds, "show", "one agent in detail", _show)
    show.add_argument("agent", help="id, folder or name")
    create = _leaf(cmds, "create", "create an agent (wire it to a chat in the app's Chats page)", _create)
    create.add_argument("name")
    create.add_argument("--provider", default="claude", choices=svc.providers())
    create.add_argument("--model", help="model name (default: the provider's default)")
    change = _leaf(cmds, "set", "rename, or change provider, model or the name the agent calls itself", _set)
    change.add_argument("agent", help="id, folder or name")
    change.add_argument("--name")
    change.add_argument("--provider", choices=svc.providers())
    change.add_argument("--model", help='model name; "" for the provider\'s default')
    change.add_argument("--assistant-name", help='the name it calls itself; "" for the agent\'s name')
    remove = _leaf(cmds, "delete", "delete an agent (its files move to <home>/deleted-agents)", _delete)
    remove.add_argument("agent", help="id, folder or name")
    remove.add_argument("--force", action="store_true", help="also unwire the chats it answers in")
    restart = _leaf(cmds, "restart", "stop its running containers; the next message starts a fresh one", _restart)
    restart.add_argument("agent", help="id, folder or name")

    memory = cmds.add_parser("memory", help="the agent's memory file").add_subparsers(
        dest="memory_command", required=True, metavar="COMMAND")
    _leaf(memory, "show", "print the memory", _memory_show).add_argument("agent", help="id, folder or name")
    edit = _leaf(memory, "edit", "edit the memory in $EDITOR, or replace it from a file", _memory_edit)
    edit.add_argument("agent", help="id, folder or name")
    edit.add_argument("--file", help="read the new memory from this file ('-' for standard input)")

    mounts = cmds.add_parser("mounts", help="extra folders an agent sees, and the allowlist").add_subparsers(
        dest="mounts_command", required=True, metavar="COMMAND")
    _leaf(mounts, "list", "an agent's extra folders and their status", _mounts_list).add_argument("agent")
    add = _leaf(mounts, "add", "give an agent a folder (it must be below an allowed root)", _mounts_add)
    add.add_argument("agent")
    add.add_argument("host_path", help="folder on this computer")
    add.add_argument("--as", dest="container_path", help="name under /workspace/extra (default: the folder's name)")
    add.add_argument("--rw", action="store_true", help="read-write (only if its allowed root allows it)")
    drop = _leaf(mounts, "remove", "take a folder away from an agent", _mounts_remove)
    drop.add_argument("agent")
    drop.add_argument("host_path")
    _leaf(mounts, "roots", "the allowlist: folders below which mounts are allowed", _roots_list)
    allow = _leaf(mounts, "allow", "allow mounts below a folder (for every agent)", _roots_add)
    allow.add_argument("path")
    allow.add_argument("--rw", action="store_true", help="allow read-write mounts below it")
    allow.add_argument("--description", default="")
    disallow = _leaf(mounts, "disallow", "stop allowing mounts below a folder", _roots_remove)
    disallow.add_argument("path")

    packages = cmds.add_parser("packages", help="extra apt and pip packages").add_subparsers(
        dest="packages_command", required=True, metavar="COMMAND")
    _leaf(packages, "show", "an agent's extra packages", _packages_show).add_argument("agent")
    for name, run, verb in (("add", _packages_add, "add"), ("remove", _packages_remove, "remove")):
        leaf = _leaf(packages, name, f"{verb} packages (a new image is built at the next start)", run)
        leaf.add_argument("agent")
        leaf.add_argument("--apt", nargs="+", default=[], metavar="NAME")
        leaf.add_argument("--pip", nargs="+", default=[], metavar="NAME")

    internet = _leaf(cmds, "internet", "what an agent may reach on the internet (the home network never)",
                     _internet)
    internet.add_argument("agent", help="id, folder or name")
    access = internet.add_mutually_exclusive_group()
    access.add_argument("--open", action="store_true", help="any site; every connection is logged")
    access.add_argument("--sites", metavar="SITE,SITE",
                        help='only these sites and their subdomains, comma-separated ("" for none at all)')

    skills = _leaf(cmds, "skills", "which shipped skills an agent's prompt carries (all unless turned off)", _skills)
    skills.add_argument("agent", help="id, folder or name")
    toggle = skills.add_mutually_exclusive_group()
    toggle.add_argument("--off", metavar="SKILL,SKILL", help="turn these skills off")
    toggle.add_argument("--on", metavar="SKILL,SKILL", help="turn these skills back on")

    mcp = cmds.add_parser("mcp", help="MCP servers of an agent").add_subparsers(
        dest="mcp_command", required=True, metavar="COMMAND")
    _leaf(mcp, "list", "an agent's MCP servers (environment values hidden)", _mcp_list).add_argument("agent")
    mcp_add = _leaf(mcp, "add", "add a stdio MCP server that the agent's container starts", _mcp_add)
    mcp_add.add_argument("agent")
    mcp_add.add_argument("name")
    mcp_add.add_argument("command")
    mcp_add.add_argument("args", nargs="*", help="arguments (put -- before them if one starts with -)")
    mcp_add.add_argument("--env", action="append", default=[], metavar="NAME[=VALUE]",
                         help="environment variable; without =VALUE it is taken from your environment, which keeps "
                              "a secret out of your shell history")
    mcp_remove = _leaf(mcp, "remove", "remove an MCP server", _mcp_remove)
    mcp_remove.add_argument("agent")
    mcp_remove.add_argument("name")


def _leaf(cmds: SubParsers, name: str, help_text: str, run: Run) -> argparse.ArgumentParser:
    parser = cmds.add_parser(name, help=help_text, description=help_text)
    json_flag(parser)
    parser.set_defaults(run=run)
    return parser


# ---------------------------------------------------------------------------------------------- agents


async def _list(args: argparse.Namespace, services: AppServices) -> int:
    agents = await svc.list_agents(services)
    if args.json:
        print_json(agents)
        return 0
    print_table([{"id": a.id, "name": a.name, "provider": a.provider, "model": a.model or "(default)",
                  "chats": ", ".join(c.name for c in a.chats) or "-", "sessions": a.sessions, "running": a.running}
                 for a in agents], ["id", "name", "provider", "model", "chats", "sessions", "running"],
                empty="no agents yet: `nanoclaw agents create NAME`")
    return 0


async def _show(args: argparse.Namespace, services: AppServices) -> int:
    agent = await svc.get_agent(services, (await svc.find_agent(services, args.agent)).id)
    if args.json:
        print_json(agent)
        return 0
    _print_agent(agent)
    return 0


def _print_agent(agent: svc.AgentDetail) -> None:
    print(f"{agent.name} ({agent.id})")
    print(f"  provider      {agent.provider}")
    print(f"  model         {agent.model or '(provider default)'}")
    print(f"  calls itself  {agent.assistant_name or agent.name}")
    print(f"  workspace     {agent.workspace}")
    print(f"  chats         {', '.join(f'{c.name} ({c.channel_type})' for c in agent.chats) or 'none'}")
    print(f"  sessions      {agent.sessions} active, {agent.running} container(s) running")
    internet = ("any site (logged)" if agent.internet_mode == "open"
                else f"only {', '.join(agent.internet_sites)}" if agent.internet_sites else "no site at all")
    print(f"  internet      {internet}; never the home network")


async def _create(args: argparse.Namespace, services: AppServices) -> int:
    agent = await svc.create_agent(services, args.name, args.provider, args.model)
    if args.json:
        print_json(agent)
        return 0
    print(f"created {agent.name} ({agent.id}); its memory is {Path(agent.workspace) / 'MEMORY.md'}")
    print("wire it to a chat on the app's Chats page (or `nanoclaw chats`) so it answers somewhere")
    return 0


async def _set(args: argparse.Namespace, services: AppServices) -> int:
    found = await svc.find_agent(services, args.agent)
    if all(v is None for v in (args.name, args.provider, args.model, args.assistant_name)):
        raise UserError("nothing to change: give --name, --provider, --model or --assistant-name")
    agent = await svc.update_agent(services, found.id, name=args.name, provider=args.provider, model=args.model,
                                   assistant_name=args.assistant_name)
    if args.json:
        print_json(agent)
        return 0
    _print_agent(agent)
    print("saved; it applies when the agent's next container starts (`nanoclaw agents restart` to apply it now)")
    return 0


async def _delete(args: argparse.Namespace, services: AppServices) -> int:
    found = await svc.find_agent(services, args.agent)
    remote = await call_running_host(services, "DELETE", f"/api/agents/{quote(found.id, safe='')}",
                             params={"force": "true" if args.force else "false"})
    result = svc.DeleteResult(**remote) if remote is not None else await svc.delete_agent(
        services, found.id, force=args.force)
    if args.json:
        print_json(result)
        return 0
    print(f"deleted {result.name}" + (f"; {result.unwired_chats} chat(s) unwired" if result.unwired_chats else ""))
    if result.stopped:
        print(f"stopped {result.stopped} running container(s)")
    if result.moved_to:
        print(f"its files are in {result.moved_to}")
    return 0


async def _restart(args: argparse.Namespace, services: AppServices) -> int:
    found = await svc.find_agent(services, args.agent)
    remote = await call_running_host(services, "POST", f"/api/agents/{quote(found.id, safe='')}/restart")
    result = svc.RestartResult(**remote) if remote is not None else await svc.restart_agent(services, found.id)
    if args.json:
        print_json(result)
    else:
        print(f"{found.name}: {result.message}")
    return 0


# ---------------------------------------------------------------------------------------------- memory


async def _memory_show(args: argparse.Namespace, services: AppServices) -> int:
    found = await svc.find_agent(services, args.agent)
    memory = await svc.get_memory(services, found.id)
    if args.json:
        print_json(memory)
    else:
        sys.stdout.write(memory.text if memory.text.endswith("\n") or not memory.text else memory.text + "\n")
    return 0


async def _memory_edit(args: argparse.Namespace, services: AppServices) -> int:
    found = await svc.find_agent(services, args.agent)
    memory = await svc.get_memory(services, found.id)
    text = _read_file(args.file) if args.file else await _edit_in_editor(memory.text)
    if text == memory.text:
        if args.json:
            print_json(memory)
        else:
            print("no change; nothing saved")
        return 0
    saved = await svc.put_memory(services, found.id, text, base_version=memory.version)
    if args.json:
        print_json(saved)
        return 0
    print(f"saved the memory of {found.name} ({saved.bytes:,} bytes) to {saved.path}")
    if saved.cut_in_prompt:
        print(f"note: the agent's prompt shows the first {saved.prompt_chars:,} characters; it reads the rest itself")
    return 0


def _read_file(name: str) -> str:
    try:
        if name == "-":
            return sys.stdin.read()
        return Path(name).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise UserError(f"{name} is not UTF-8 text; save it as UTF-8 and try again") from err
    except OSError as err:
        raise UserError(f"cannot read {name}: {err.strerror or err}") from err


async def _edit_in_editor(text: str) -> str:
    """Open the text in the user's editor (``$VISUAL`` or ``$EDITOR``) and return what they saved."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor:
        raise UserError("set $EDITOR (or $VISUAL) to your editor, or pass --file PATH (--file - reads standard input)")
    with tempfile.TemporaryDirectory(prefix="nanoclaw-memory-") as folder:
        path = Path(folder) / "MEMORY.md"
        path.write_text(text, encoding="utf-8")
        try:
            process = await asyncio.create_subprocess_exec(*shlex.split(editor), str(path))
        except OSError as err:
            raise UserError(f"cannot start the editor {editor!r}: {err.strerror or err}; check $EDITOR") from err
        code = await process.wait()
        if code != 0:
            raise UserError(f"the editor exited with code {code}; nothing was saved")
        return _read_file(str(path))


# ---------------------------------------------------------------------------------------------- mounts


def _print_mounts(args: argparse.Namespace, view: svc.MountsView) -> int:
    if args.json:
        print_json(view)
        return 0
    if view.error:
        print(f"problem: {view.error}")
    print_table([{"folder": m.host_path, "in container": m.target or "-",
                  "status": ("read-write" if not m.read_only else "read-only") if m.ok else f"refused: {m.reason}",
                  "note": m.note} for m in view.mounts],
                ["folder", "in container", "status", "note"], empty="no extra folders")
    return 0


async def _mounts_list(args: argparse.Namespace, services: AppServices) -> int:
    found = await svc.find_agent(services, args.agent)
    return _print_mounts(args, await svc.get_mounts(services, found.id))


async def _mounts_add(args: argparse.Namespace, services: AppServices) -> int:
    found = await svc.find_agent(services, args.agent)
    current = await svc.get_mounts(services, found.id)
    wanted = [svc.MountIn(m.host_path, m.container_path, m.read_write) for m in current.mounts]
    wanted.append(svc.MountIn(args.host_path, args.container_path, args.rw))
    view = await svc.set_mounts(services, found.id, wanted)
    if not args.json:
        print(f"saved; {found.name} sees it from its next container start")
    return _print_mounts(args, view)


async def _mounts_remove(args: argparse.Namespace, services: AppServices) -> int:
    found = await svc.find_agent(services, args.agent)
    current = await svc.get_mounts(services, found.id)
    kept = [svc.MountIn(m.host_path, m.container_path, m.read_write) for m in current.mounts
            if m.host_path != args.host_path]
    if len(kept) == len(current.mounts):
        raise NotFound(f"{found.name} has no extra folder {args.host_path!r}; "
                       f"`nanoclaw agents mounts list {args.agent}` shows them")
    return _print_mounts(args, await svc.set_mounts(services, found.id, kept))


def _print_roots(args: argparse.Namespace, view: svc.AllowlistView) -> int:
    if args.json:
        print_json(view)
        return 0
    print(f"allowlist: {view.path}")
    print_table([{"folder": r.path, "mode": "read-write" if r.allow_read_write else "read-only",
                  "exists": "yes" if r.exists else "MISSING", "note": r.description} for r in view.roots],
                ["folder", "mode", "exists", "note"],
                empty="no allowed roots: every extra folder is refused (`nanoclaw agents mounts allow PATH`)")
    print("always refused: " + ", ".join([*view.default_blocked, *view.blocked_patterns]))
    return 0


async def _roots_list(args: argparse.Namespace, services: AppServices) -> int:
    return _print_roots(args, await svc.get_allowlist(services))


async def _roots_add(args: argparse.Namespace, services: AppServices) -> int:
    return _print_roots(args, await svc.add_allowed_root(services, args.path, read_write=args.rw,
                                                         description=args.description))


async def _roots_remove(args: argparse.Namespace, services: AppServices) -> int:
    return _print_roots(args, await svc.remove_allowed_root(services, args.path))


# ---------------------------------------------------------------------------------------------- packages


def _print_packages(args: argparse.Namespace, packages: svc.Packages) -> int:
    if args.json:
        print_json(packages)
        return 0
    print(f"apt: {' '.join(packages.apt) or '-'}")
    print(f"pip: {' '.join(packages.pip) or '-'}")
    if packages.rebuild_on_next_start:
        print("saved; a new image is built when the agent's next container starts (a few minutes, once)")
    return 0


async def _packages_show(args: argparse.Namespace, services: AppServices) -> int:
    found = await svc.find_agent(services, args.agent)
    return _print_packages(args, await svc.get_packages(services, found.id))


async def _packages_add(args: argparse.Namespace, services: AppServices) -> int:
    if not args.apt and not args.pip:
        raise UserError("name packages with --apt NAME ... and/or --pip NAME ...")
    found = await svc.find_agent(services, args.agent)
    current = await svc.get_packages(services, found.id)
    saved = await svc.set_packages(services, found.id, apt=[*current.apt, *args.apt], pip=[*current.pip, *args.pip])
    return _print_packages(args, saved)


async def _packages_remove(args: argparse.Namespace, services: AppServices) -> int:
    if not args.apt and not args.pip:
        raise UserError("name packages with --apt NAME ... and/or --pip NAME ...")
    found = await svc.find_agent(services, args.agent)
    current = await svc.get_packages(services, found.id)
    missing = [n for n in args.apt if n not in current.apt] + [n for n in args.pip if n not in current.pip]
    if missing:
        raise NotFound(f"{found.name} does not have {', '.join(missing)}; "
                       f"`nanoclaw agents packages show {args.agent}` lists its packages")
    saved = await svc.set_packages(services, found.id, apt=[n for n in current.apt if n not in args.apt],
                                   pip=[n for n in current.pip if n not in args.pip])
    return _print_packages(args, saved)


# ---------------------------------------------------------------------------------------------- internet access


async def _internet(args: argparse.Namespace, services: AppServices) -> int:
    found = await svc.find_agent(services, args.agent)
    if not args.open and args.sites is None:
        access = await svc.get_internet(services, found.id)
    else:
        mode = "open" if args.open else "sites"
        # "--open" keeps the stored list (as the page does); only "--sites" changes it.
        sites = (await svc.get_internet(services, found.id)).sites if args.open else args.sites.split(",")
        # The running host publishes the change to its proxy; without one, nothing runs to tell.
        remote = await call_running_host(services, "PUT", f"/api/agents/{quote(found.id, safe='')}/internet",
                                         json={"mode": mode, "sites": sites})
        access = svc.InternetAccess(**remote) if remote is not None else await svc.set_internet(
            services, found.id, mode, sites)
    if args.json:
        print_json(access)
        return 0
    if access.mode == "open":
        print(f"{found.name} may reach any site; every connection is logged (Activity, Internet)")
    elif access.sites:
        print(f"{found.name} may reach only: {', '.join(access.sites)} (and their subdomains)")
    else:
        print(f"{found.name} may reach no site at all (only these sites, and the list is empty)")
    print("the home network is never reachable, whatever is set here")
    return 0


# ---------------------------------------------------------------------------------------------- skills


async def _skills(args: argparse.Namespace, services: AppServices) -> int:
    found = await svc.find_agent(services, args.agent)
    view = await svc.get_skills(services, found.id)
    if args.off is not None or args.on is not None:
        named = {n.strip() for n in (args.off if args.off is not None else args.on).split(",") if n.strip()}
        if not named:
            raise UserError("name the skills, comma-separated, e.g. --off web,files")
        off = {s.name for s in view.skills if not s.enabled}
        view = await svc.set_skills(services, found.id, sorted(off | named if args.off is not None else off - named))
    if args.json:
        print_json(view)
        return 0
    for skill in view.skills:
        print(f"  [{'on ' if skill.enabled else 'off'}] {skill.name:<15} {skill.description}")
    print(f"own skills: {view.own_folder}/<name>/SKILL.md (loaded after these; applies at the next container start)")
    return 0


# ---------------------------------------------------------------------------------------------- MCP servers


def _print_servers(args: argparse.Namespace, servers: list[svc.McpServer]) -> int:
    if args.json:
        print_json(servers)
        return 0
    print_table([{"name": s.name, "command": " ".join([s.command, *s.args]),
                  "env": " ".join(f"{k}={v}" for k, v in s.env.items())} for s in servers],
                ["name", "command", "env"], empty="no MCP servers")
    return 0


async def _mcp_list(args: argparse.Namespace, services: AppServices) -> int:
    found = await svc.find_agent(services, args.agent)
    return _print_servers(args, await svc.list_mcp_servers(services, found.id))


async def _mcp_add(args: argparse.Namespace, services: AppServices) -> int:
    env: dict[str, str] = {}
    for item in args.env:
        name, sep, value = item.partition("=")
        if not sep:
            if name not in os.environ:
                raise UserError(f"--env {name}: no value given and {name} is not set in your environment")
            value = os.environ[name]
        env[name] = value
    found = await svc.find_agent(services, args.agent)
    servers = await svc.add_mcp_server(services, found.id, args.name, args.command, args.args, env)
    if not args.json:
        print(f"added; {found.name} starts it from its next container start")
    return _print_servers(args, servers)


async def _mcp_remove(args: argparse.Namespace, services: AppServices) -> int:
    found = await svc.find_agent(services, args.agent)
    return _print_servers(args, await svc.remove_mcp_server(services, found.id, args.name))
