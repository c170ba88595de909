"""The agents service: what the page, the API and the CLI share — memory files that cannot be used to escape the
workspace, mounts checked at save time, package and MCP checks shared with the agents' own requests, restart and a
delete that loses nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from nanoclaw_app.core.approvals.service import ApprovalService
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.system_actions import MAX_PACKAGES
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import destinations, messaging
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.errors import NotFound, UserError
from nanoclaw_app.host_state import HostState
from nanoclaw_app.runfile import remove_run_file, write_run_file
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.services import agents as svc
from nanoclaw_app.services.auth import WebAuth
from nanoclaw_app.services.context import AppServices
from tests.fakes.waker import RecordingWaker


def _services(ctx: CoreContext, *, live: bool = True) -> AppServices:
    return AppServices(ctx=ctx, secrets=SecretStore(None), approvals=ApprovalService(ctx), auth=WebAuth(ctx.db),
                       state=HostState(), live=live)


@pytest.fixture
def services(ctx: CoreContext) -> AppServices:
    return _services(ctx)


async def test_memory_write_is_atomic_and_keeps_the_files_permissions(services: AppServices) -> None:
    agent = await svc.create_agent(services, "Nano")
    path = Path(agent.workspace) / "MEMORY.md"
    path.chmod(0o640)
    saved = await svc.put_memory(services, agent.id, "Grüße\n", base_version=(await svc.get_memory(
        services, agent.id)).version)
    assert path.read_bytes() == "Grüße\n".encode()
    assert path.stat().st_mode & 0o777 == 0o640
    assert saved.bytes == 8
    assert [p.name for p in path.parent.iterdir()] == ["MEMORY.md"]  # no temp file left behind


async def test_memory_never_follows_a_link_the_agent_planted(services: AppServices, tmp_path: Path) -> None:
    agent = await svc.create_agent(services, "Nano")
    outside = tmp_path / "outside.txt"
    outside.write_text("host secret", encoding="utf-8")
    path = Path(agent.workspace) / "MEMORY.md"
    path.unlink()
    path.symlink_to(outside)
    with pytest.raises(UserError, match="symbolic link"):
        await svc.get_memory(services, agent.id)
    with pytest.raises(UserError, match="symbolic link"):
        await svc.put_memory(services, agent.id, "overwritten")
    assert outside.read_text(encoding="utf-8") == "host secret"


async def test_memory_refuses_a_fifo_instead_of_hanging(services: AppServices) -> None:
    agent = await svc.create_agent(services, "Nano")
    path = Path(agent.workspace) / "MEMORY.md"
    path.unlink()
    os.mkfifo(path)
    with pytest.raises(UserError, match="is a pipe"):
        await svc.get_memory(services, agent.id)


async def test_memory_flags_a_long_file_and_undecodable_bytes(services: AppServices) -> None:
    agent = await svc.create_agent(services, "Nano")
    path = Path(agent.workspace) / "MEMORY.md"
    path.write_bytes(b"caf\xe9\n")
    memory = await svc.get_memory(services, agent.id)
    assert (memory.text, memory.lossy) == ("caf\ufffd\n", True)
    long = await svc.put_memory(services, agent.id, "x" * (memory.prompt_chars + 1))
    assert long.cut_in_prompt is True
    with pytest.raises(UserError, match="NUL"):
        await svc.put_memory(services, agent.id, "a\x00b")


async def test_memory_of_an_agent_without_a_workspace_yet_is_empty_then_created(
    services: AppServices, ctx: CoreContext
) -> None:
    made = await agents_db.create(ctx.db, "Bare")  # as an older install or a test seed does: no folder
    memory = await svc.get_memory(services, made.id)
    assert (memory.text, memory.bytes) == ("", 0)
    await svc.put_memory(services, made.id, "hello", base_version=memory.version)
    assert (ctx.settings.paths.agents / made.folder / "MEMORY.md").read_text(encoding="utf-8") == "hello"


async def test_agents_are_found_by_id_folder_or_name(services: AppServices, ctx: CoreContext) -> None:
    nano = await svc.create_agent(services, "Nano Bot")
    assert (await svc.find_agent(services, nano.id)).id == nano.id
    assert (await svc.find_agent(services, "nano-bot")).id == nano.id
    assert (await svc.find_agent(services, "NANO BOT")).id == nano.id
    await agents_db.create(ctx.db, "Twin Peaks")
    await agents_db.create(ctx.db, "twin peaks")  # agents made by other agents may share a name
    with pytest.raises(UserError, match="several agents are called 'twin peaks'; use the id"):
        await svc.find_agent(services, "twin peaks")
    with pytest.raises(NotFound, match="nanoclaw agents list"):
        await svc.find_agent(services, "nobody")


async def test_saved_mounts_show_their_status_against_the_current_allowlist(
    services: AppServices, tmp_path: Path
) -> None:
    agent = await svc.create_agent(services, "Nano")
    (tmp_path / "work" / "a").mkdir(parents=True)
    (tmp_path / "work" / "b").mkdir()
    await svc.add_allowed_root(services, str(tmp_path / "work"), read_write=True)
    view = await svc.set_mounts(services, agent.id, [
        svc.MountIn(str(tmp_path / "work" / "a"), None, True), svc.MountIn(str(tmp_path / "work" / "b"), "bee")])
    assert [(m.ok, m.target, m.read_only) for m in view.mounts] == [
        (True, "/workspace/extra/a", False), (True, "/workspace/extra/bee", True)]

    (tmp_path / "work" / "a").rmdir()
    later = await svc.get_mounts(services, agent.id)
    assert [m.ok for m in later.mounts] == [False, True]
    assert "does not exist" in later.mounts[0].reason


async def test_a_mount_list_with_one_refusal_saves_nothing(services: AppServices, ctx: CoreContext,
                                                          tmp_path: Path) -> None:
    agent = await svc.create_agent(services, "Nano")
    (tmp_path / "work" / "a").mkdir(parents=True)
    await svc.add_allowed_root(services, str(tmp_path / "work"))
    with pytest.raises(UserError, match="does not exist"):
        await svc.set_mounts(services, agent.id, [svc.MountIn(str(tmp_path / "work" / "a")),
                                                  svc.MountIn(str(tmp_path / "work" / "missing"))])
    config = await agents_db.get_config(ctx.db, agent.id)
    assert config is not None
    assert config.additional_mounts == "[]"


async def test_allowlist_roots_are_replaced_not_duplicated_and_removal_says_what_exists(
    services: AppServices, tmp_path: Path
) -> None:
    await svc.add_allowed_root(services, str(tmp_path), description="first")
    view = await svc.add_allowed_root(services, str(tmp_path) + "/", read_write=True, description="second")
    assert [(r.path, r.allow_read_write, r.description) for r in view.roots] == [(str(tmp_path), True, "second")]
    with pytest.raises(NotFound, match=f"the allowlist has: {tmp_path}"):
        await svc.remove_allowed_root(services, "/nowhere")
    assert (await svc.remove_allowed_root(services, str(tmp_path))).roots == []
    with pytest.raises(UserError, match="does not exist"):
        await svc.add_allowed_root(services, str(tmp_path / "missing"))
    with pytest.raises(UserError, match="absolute"):
        await svc.add_allowed_root(services, "relative/path")


async def test_package_changes_are_capped_like_an_agents_request(services: AppServices) -> None:
    agent = await svc.create_agent(services, "Nano")
    many = [f"pkg{i}" for i in range(MAX_PACKAGES + 1)]
    with pytest.raises(UserError, match=f"at most {MAX_PACKAGES} new packages"):
        await svc.set_packages(services, agent.id, pip=many)
    first = await svc.set_packages(services, agent.id, pip=many[:MAX_PACKAGES])
    assert first.rebuild_on_next_start is True
    second = await svc.set_packages(services, agent.id, apt=["ffmpeg", "ffmpeg"])
    assert (second.apt, len(second.pip)) == (["ffmpeg"], MAX_PACKAGES)  # duplicates folded, pip kept


async def test_an_mcp_server_change_is_announced_for_open_pages(services: AppServices, ctx: CoreContext) -> None:
    agent = await svc.create_agent(services, "Nano")
    async with ctx.events.subscribe() as queue:
        await svc.add_mcp_server(services, agent.id, "files", "mcp-files", ["--root", "/workspace"],
                                 {"API_KEY": "k"})
        event = await queue.get()
    assert (event.kind, event.data) == ("agent.config_changed", {"agent_group_id": agent.id,
                                                                 "change": "mcp_servers"})
    (server,) = await svc.list_mcp_servers(services, agent.id)
    assert server.env == {"API_KEY": "••••••"}


async def test_restart_stops_only_running_containers(services: AppServices, ctx: CoreContext,
                                                     waker: RecordingWaker) -> None:
    agent = await svc.create_agent(services, "Nano")
    running, _ = await sessions_db.find_or_create(ctx.db, agent.id, "agent-shared", None, None)
    idle, _ = await sessions_db.find_or_create(ctx.db, agent.id, "shared", None, None)
    waker.running.add(running.id)
    result = await svc.restart_agent(services, agent.id)
    assert result.stopped == 1
    assert waker.stopped == [(running.id, "restarted by the owner")]
    assert idle.id not in [sid for sid, _ in waker.stopped]


async def test_restart_without_the_host_says_so_honestly(ctx: CoreContext) -> None:
    offline = _services(ctx, live=False)
    agent = await svc.create_agent(offline, "Nano")
    result = await svc.restart_agent(offline, agent.id)
    assert (result.stopped, result.live) == (0, False)
    assert "NanoClaw is not running" in result.message

    write_run_file(ctx.settings.paths, "http://127.0.0.1:1/")  # a host (this process) is running
    try:
        with pytest.raises(UserError, match="owns this agent's containers"):
            await svc.restart_agent(offline, agent.id)
        with pytest.raises(UserError, match="owns this agent's containers"):
            await svc.delete_agent(offline, agent.id)
    finally:
        remove_run_file(ctx.settings.paths)
    assert await agents_db.get(ctx.db, agent.id) is not None


async def test_delete_moves_files_aside_and_other_agents_lose_it_as_a_destination(
    services: AppServices, ctx: CoreContext, waker: RecordingWaker
) -> None:
    parent = await svc.create_agent(services, "Parent")
    child = await svc.create_agent(services, "Child")
    await destinations.add(ctx.db, parent.id, "child", "agent", child.id)
    session, _ = await sessions_db.find_or_create(ctx.db, child.id, "agent-shared", None, None)
    await ctx.store.create(child.id, session.id)
    waker.running.add(session.id)

    result = await svc.delete_agent(services, child.id)
    assert result.stopped == 1
    assert result.moved_to is not None
    trash = Path(result.moved_to)
    assert (trash / "workspace" / "MEMORY.md").read_text(encoding="utf-8") == "# Child\n"
    assert (trash / "sessions" / session.id).is_dir()
    assert await destinations.list_for(ctx.db, parent.id) == []
    assert await sessions_db.get(ctx.db, session.id) is None

    again = await svc.create_agent(services, "Child")  # a new agent of the same name starts with a fresh memory
    assert (await svc.get_memory(services, again.id)).text == "# Child\n"
    assert again.folder == "child"


async def test_delete_is_refused_while_wired_and_lists_the_chats(services: AppServices, ctx: CoreContext) -> None:
    agent = await svc.create_agent(services, "Nano")
    for n in range(2):
        chat = await messaging.create(ctx.db, "test", f"chat-{n}", name=f"Chat {n}", is_group=True)
        await messaging.wire(ctx.db, chat.id, agent.id)
    with pytest.raises(UserError, match=r"answers in 2 chat\(s\) \(Chat 0, Chat 1\).*force"):
        await svc.delete_agent(services, agent.id)
    assert (await svc.delete_agent(services, agent.id, force=True)).unwired_chats == 2
    assert await svc.list_agents(services) == []
