"""Command line: ``nanoclaw`` (the app window), ``serve`` (headless), ``open``, ``doctor``, ``db``, ``image``.

Every app area adds its management subcommands too (agents, chats, people, ...; see ``nanoclaw_app.commands``).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import shutil
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from nanoclaw_app import __version__
from nanoclaw_app.errors import ConfigError, NanoClawError
from nanoclaw_app.paths import Paths

if TYPE_CHECKING:
    from pathlib import Path

    from nanoclaw_app.runtime.image import BuildProgress
    from nanoclaw_app.settings import Settings

log = logging.getLogger("nanoclaw")


CORE_COMMANDS = ("serve", "doctor", "db", "image", "open", "service")
VALUE_OPTIONS = ("--host", "--port")


def build_parser(*, areas: bool = True) -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and for shell completion).

    ``areas=False`` leaves out the management subcommands, whose imports would only slow down opening the app.
    """
    parser = argparse.ArgumentParser(prog="nanoclaw", description="Your personal AI agent, sandboxed.")
    parser.add_argument("--version", action="version", version=f"nanoclaw {__version__}")
    _add_bind_options(parser, default=None)
    parser.add_argument("--background", action="store_true",
                        help="start with the window hidden behind the tray icon (how the start at login runs it)")
    sub = parser.add_subparsers(dest="command")
    serve = sub.add_parser("serve", help="run the host headless (web UI in a browser)")
    _add_bind_options(serve, default=argparse.SUPPRESS)
    doctor = sub.add_parser("doctor", help="check this machine and the setup")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.add_argument("--live", action="store_true",
                        help="also start one agent container and time how fast messages cross its session folder "
                             "(the check to run when messages seem stuck)")
    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("migrate", help="apply pending schema migrations")
    image = sub.add_parser("image", help="the agent container image")
    image_sub = image.add_subparsers(dest="image_command", required=True)
    image_sub.add_parser("build", help="build the agent image now (otherwise the first message builds it)")
    sub.add_parser("open", help="print a one-time sign-in link to the running app (for a browser)")
    service = sub.add_parser("service", help="run NanoClaw in the background as your user's service (home server)")
    service_sub = service.add_subparsers(dest="service_command", required=True)
    install = service_sub.add_parser("install", help="write, enable and start it (a systemd unit, a LaunchAgent)")
    install.add_argument("--linger", action="store_true",
                         help="also keep it running while you are logged out (loginctl enable-linger)")
    service_sub.add_parser("uninstall", help="stop and remove it (your data stays)")
    service_sub.add_parser("status", help="whether it is installed, enabled and running, in words")
    if areas:
        from nanoclaw_app.commands import register_all

        register_all(sub)
    return parser


def _needs_areas(argv: Sequence[str]) -> bool:
    """Whether ``argv`` names a management command (or asks for help, or is a typo to explain with every choice)."""
    tokens = iter(argv)
    for token in tokens:
        if token in ("-h", "--help"):
            return True
        if token in VALUE_OPTIONS:
            next(tokens, None)
        elif not token.startswith("-"):
            return token not in CORE_COMMANDS
    return False


def _add_bind_options(parser: argparse.ArgumentParser, *, default: Any) -> None:
    """``--host``/``--port`` for the window (no command) and for ``serve``.

    The subcommand's copies default to SUPPRESS so that ``nanoclaw --port 9000 serve`` keeps the 9000.
    """
    parser.add_argument("--host", default=default,
                        help="address to bind (default 127.0.0.1; another address needs LAN access and its password)")
    parser.add_argument("--port", type=int, default=default, help="port to bind (default 8765; 0 picks a free one)")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    given = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(areas=_needs_areas(given)).parse_args(given)
    try:
        if args.command == "doctor":
            return _doctor(as_json=args.json, live=args.live)
        if args.command == "db":
            return asyncio.run(_migrate())
        if args.command == "image":
            return asyncio.run(_image_build())
        if args.command == "open":
            return asyncio.run(_open_link())
        if args.command == "service":
            from nanoclaw_app.system_service import service_main

            return service_main(args.service_command, linger=getattr(args, "linger", False))
        run = getattr(args, "run", None)
        if run is not None:
            return asyncio.run(_run_command(run, args))
        if args.command == "serve":
            return _serve(args.host, args.port)
        return _window(args.host, args.port, background=args.background)
    except ConfigError as err:
        print(f"nanoclaw: {err}", file=sys.stderr)
        return 2
    except NanoClawError as err:
        print(f"nanoclaw: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl+C before a command's own handling is in place: stop quietly
        print("nanoclaw: interrupted", file=sys.stderr)
        return 130


def _doctor(*, as_json: bool, live: bool = False) -> int:
    from nanoclaw_app.doctor import Check, render, run_checks

    async def collect() -> list[Check]:
        paths = Paths.from_env()
        checks = await run_checks(paths)
        if live:
            from nanoclaw_app.doctor_live import live_check

            if not as_json:
                print("starting a container to time the session folder (a few seconds)...", file=sys.stderr)
            checks.append(await live_check(paths))
        return checks

    checks = asyncio.run(collect())
    if as_json:
        # ``data`` only where a check has numbers (the live one), so every other line keeps its shape
        print(json.dumps([{k: v for k, v in asdict(c).items() if k != "data" or v is not None} for c in checks],
                         indent=2))
    else:
        print(render(checks))
    return 0 if all(c.ok or not c.required for c in checks) else 1


async def _migrate() -> int:
    from nanoclaw_app.db.database import Database
    from nanoclaw_app.db.migrate import migrate

    paths = Paths.from_env()
    paths.ensure()
    async with Database(paths.central_db) as db:
        applied = await migrate(db)
    print("applied: " + ", ".join(applied) if applied else "database is up to date")
    return 0


async def _image_build() -> int:
    from nanoclaw_app.runtime.podman_runtime import PodmanRuntime
    from nanoclaw_app.settings import load_settings

    settings = load_settings()
    settings.paths.ensure()
    tty = sys.stdout.isatty()

    def show(progress: BuildProgress) -> None:
        print(render_progress(progress, width=shutil.get_terminal_size().columns if tty else 0),
              end="\r" if tty else "\n", flush=True)

    runtime = PodmanRuntime(settings)
    try:
        await runtime.open()
        print(f"building the agent image on {settings.agent_base_image} (several minutes the first time)")
        tag = await runtime.images.ensure_base(on_progress=show)
    finally:
        await runtime.close()
    if tty:
        print()
    print(f"agent image ready: {tag}")
    return 0


async def _open_link() -> int:
    from nanoclaw_app.db.database import Database
    from nanoclaw_app.db.migrate import migrate
    from nanoclaw_app.runfile import read_run_file
    from nanoclaw_app.services.auth import issue_login_token

    paths = Paths.from_env()
    running = read_run_file(paths)
    if running is None:
        from nanoclaw_app.terminal_command import terminal_command

        raise ConfigError(f"NanoClaw is not running: start it with `{terminal_command()}` (window) or "
                          f"`{terminal_command('serve')}` (headless)")
    async with Database(paths.central_db) as db:
        await migrate(db)
        token = await issue_login_token(db)
    print(f"{running['url']}login?token={token}")
    print("the link works once, within 10 minutes", file=sys.stderr)
    return 0


async def _run_command(run: Any, args: argparse.Namespace) -> int:
    """A management subcommand: the service layer over this machine's database."""
    from nanoclaw_app.services.offline import offline_services
    from nanoclaw_app.settings import load_settings

    settings = load_settings()
    async with offline_services(settings) as services:
        code = await run(args, services)
    return int(code)


def render_progress(progress: BuildProgress, *, width: int) -> str:
    """One status line for a build step: a bar on a terminal (``width`` > 0), plain text otherwise."""
    head = f"step {progress.step}/{progress.steps or '?'} {progress.elapsed_s:5.0f}s"
    if width <= 0:
        return f"{head}  {progress.line}"
    filled = round(20 * progress.step / progress.steps) if progress.steps else 0
    bar = "[" + "#" * filled + "." * (20 - filled) + "]"
    text = f"{bar} {head}  {progress.line}"
    return text[: width - 1].ljust(width - 1)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def _check_bind(settings: Settings) -> None:
    """Listen beyond this machine only with LAN access on and a LAN password set: the network would reach the app."""
    host = settings.host
    if _is_loopback(host):
        return
    if not settings.lan_access:
        raise ConfigError(
            f"refusing to listen on {host}: LAN access is off. Turn it on in the app's Settings (it asks for a "
            "password), or use --host 127.0.0.1"
        )
    from nanoclaw_app.db.database import Database
    from nanoclaw_app.db.migrate import migrate
    from nanoclaw_app.services.auth import WebAuth

    settings.paths.ensure()
    async with Database(settings.paths.central_db) as db:
        await migrate(db)
        has_password = await WebAuth(db).has_password()
    if not has_password:
        raise ConfigError(
            f"refusing to listen on {host}: LAN access has no password yet. Set one in the app's Settings "
            "(LAN access), or use --host 127.0.0.1"
        )


def _overrides(host: str | None, port: int | None) -> dict[str, Any]:
    """The command line's settings, which win over the file's (also when the app restarts itself)."""
    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        overrides["port"] = port
    return overrides


def _prepare(host: str | None, port: int | None) -> tuple[Settings, Path]:
    """Settings with the command line's overrides, the bind checked, folders and logging in place."""
    from nanoclaw_app.logs import setup_logging
    from nanoclaw_app.settings import load_settings

    settings = load_settings(**_overrides(host, port))
    asyncio.run(_check_bind(settings))
    settings.paths.ensure()
    return settings, setup_logging(settings.paths.logs, settings.log_level)


def _window(host: str | None, port: int | None, *, background: bool = False) -> int:
    """``nanoclaw``: the app in its own window (headless with the URL where no window can open)."""
    from nanoclaw_app.settings import load_settings
    from nanoclaw_app.window import run_app

    settings, log_file = _prepare(host, port)
    overrides = _overrides(host, port)
    return run_app(settings, log_file, background=background, reload=lambda: load_settings(**overrides))


def _serve(host: str | None, port: int | None) -> int:
    settings, log_file = _prepare(host, port)

    async def run() -> None:
        from nanoclaw_app.host import Host
        from nanoclaw_app.terminal_command import sign_in_hint

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        host_obj = Host(settings)

        def restart() -> None:  # Restart now, from the page: this process is started afresh once the host stopped
            restarting.set()
            loop.call_soon(stop.set)

        host_obj.services.restart = restart
        await host_obj.start()
        try:
            print(f"NanoClaw {__version__} is running: {host_obj.url}", flush=True)
            print(sign_in_hint(lan=settings.lan_access), flush=True)
            print(f"log: {log_file}  (Ctrl+C to stop)", flush=True)
            await stop.wait()
        finally:
            await host_obj.stop()

    from nanoclaw_app.desktop.instance import hold_instance

    restarting = threading.Event()
    with hold_instance(settings.paths, "serve"):  # one host per home: a second one is refused in plain words
        asyncio.run(run())
    if restarting.is_set():
        from nanoclaw_app.processes import start_again

        print("restarting NanoClaw", flush=True)
        start_again()  # a service manager keeps following the same pid
    return 0
