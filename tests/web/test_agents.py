"""The agents page and its API: create, settings, memory, mounts through the allowlist, packages, MCP servers,
restart and delete — against the real app, with the in-process container runtime."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import expect

from nanoclaw_app.cli import main
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import messaging
from nanoclaw_app.db import sessions as sessions_db
from nanoclaw_app.db.messaging import WiringSpec
from nanoclaw_app.host import Host
from tests.web.conftest import shot


async def _create(client: httpx.AsyncClient, name: str, **extra: Any) -> dict[str, Any]:
    response = await client.post("/api/agents", json={"name": name, **extra})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _running_session(host: Host, agent_id: str) -> str:
    """Start a container for a session of the agent, as a message would."""
    session, _ = await sessions_db.find_or_create(host.db, agent_id, "agent-shared", None, None)
    await host.store.create(agent_id, session.id)
    assert await host.waker.wake(session)
    assert await host.waker.is_running(session.id)
    return session.id


async def test_a_created_agent_is_listed_with_its_model_and_workspace(
    web_host: Host, client: httpx.AsyncClient
) -> None:
    created = await _create(client, "Research helper", provider="anthropic", model="claude-haiku-4-5")
    assert created["folder"] == "research-helper"
    memory_file = Path(created["workspace"]) / "MEMORY.md"
    assert memory_file.read_text(encoding="utf-8") == "# Research helper\n"

    listed = (await client.get("/api/agents")).json()
    mine = next(a for a in listed if a["id"] == created["id"])
    assert (mine["provider"], mine["model"], mine["sessions"], mine["running"], mine["chats"]) == (
        "anthropic", "claude-haiku-4-5", 0, 0, [])
    assert (await client.get("/api/agents/providers")).json() == ["anthropic", "claude", "openai"]
    schema = (await client.get("/schema/openapi.json")).json()
    assert {"/api/agents/{agent_id}/memory", "/api/agents/{agent_id}/restart"} <= set(schema["paths"])


async def test_bad_agent_input_is_refused_with_the_fix(client: httpx.AsyncClient) -> None:
    await _create(client, "Nano")
    cases = [
        ({"name": "   "}, "must not be empty"),
        ({"name": "x" * 65}, "at most 64"),
        ({"name": "nano"}, "exists already"),
        ({"name": "Other", "provider": "gpt"}, "choose one of anthropic, claude, openai"),
        ({"name": "Other", "model": "two words"}, "provider's default"),
    ]
    for body, message in cases:
        response = await client.post("/api/agents", json=body)
        assert response.status_code == 400, body
        assert message in response.json()["error"], (body, response.json())
    assert [a["name"] for a in (await client.get("/api/agents")).json()] == ["Nano"]


async def test_settings_change_and_an_empty_model_means_the_default(client: httpx.AsyncClient) -> None:
    agent = await _create(client, "Nano", model="claude-sonnet-4-5")
    changed = await client.patch(f"/api/agents/{agent['id']}", json={
        "name": "Nano Two", "provider": "openai", "model": "", "assistant_name": "Nana"})
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["name"], body["provider"], body["model"], body["assistant_name"]) == (
        "Nano Two", "openai", None, "Nana")
    assert body["folder"] == agent["folder"]  # the workspace does not move on a rename
    refused = await client.patch(f"/api/agents/{agent['id']}", json={"provider": "nope", "name": "Changed"})
    assert refused.status_code == 400
    assert (await client.get(f"/api/agents/{agent['id']}")).json()["name"] == "Nano Two"  # nothing half-applied
    missing = await client.get("/api/agents/ag-missing")
    assert missing.status_code == 404
    assert "no agent" in missing.json()["error"]


async def test_memory_is_saved_to_the_file_and_a_stale_editor_cannot_overwrite_the_agent(
    client: httpx.AsyncClient,
) -> None:
    agent = await _create(client, "Nano")
    url = f"/api/agents/{agent['id']}/memory"
    opened = (await client.get(url)).json()
    assert opened["text"] == "# Nano\n"
    saved = await client.put(url, json={"text": "# Nano\nLikes tea ☕\n", "base_version": opened["version"]})
    assert saved.status_code == 200, saved.text
    assert Path(opened["path"]).read_text(encoding="utf-8") == "# Nano\nLikes tea ☕\n"
    assert saved.json()["bytes"] == len("# Nano\nLikes tea ☕\n".encode())

    Path(opened["path"]).write_text("# Nano\nThe agent wrote this\n", encoding="utf-8")
    stale = await client.put(url, json={"text": "mine", "base_version": saved.json()["version"]})
    assert stale.status_code == 400
    assert "changed since you opened it" in stale.json()["error"]
    assert "The agent wrote this" in Path(opened["path"]).read_text(encoding="utf-8")

    huge = await client.put(url, json={"text": "x" * (opened["max_bytes"] + 1)})
    assert huge.status_code == 400
    assert "the limit is" in huge.json()["error"]


async def test_a_mount_outside_the_allowlist_is_refused_with_the_reason(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    agent = await _create(client, "Nano")
    url = f"/api/agents/{agent['id']}/mounts"
    projects = tmp_path / "projects"
    (projects / "notes").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()

    refused = await client.put(url, json={"mounts": [{"host_path": str(projects / "notes")}]})
    assert refused.status_code == 400
    assert "the mount allowlist allows no folders yet" in refused.json()["error"]

    roots = await client.post("/api/agents/allowlist/roots", json={"path": str(projects), "description": "work"})
    assert roots.status_code == 200, roots.text
    assert roots.json()["roots"] == [{"path": str(projects), "allow_read_write": False, "description": "work",
                                      "exists": True}]
    outside = await client.put(url, json={"mounts": [{"host_path": str(tmp_path / "elsewhere")}]})
    assert outside.status_code == 400
    assert "is not under any allowed root" in outside.json()["error"]

    saved = await client.put(url, json={"mounts": [{"host_path": str(projects / "notes"), "read_write": True}]})
    assert saved.status_code == 200, saved.text
    (mount,) = saved.json()["mounts"]
    assert (mount["ok"], mount["target"], mount["read_only"]) == (True, "/workspace/extra/notes", True)
    assert "does not allow read-write" in mount["note"]

    removed = await client.delete("/api/agents/allowlist/roots", params={"path": str(projects)})
    assert removed.status_code == 200
    (now,) = (await client.get(url)).json()["mounts"]
    assert now["ok"] is False
    assert "allows no folders yet" in now["reason"]


async def test_nanoclaw_home_is_refused_as_a_mount_and_as_a_root(
    web_host: Host, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    agent = await _create(client, "Nano")
    home = web_host.settings.paths.home
    assert (await client.post("/api/agents/allowlist/roots", json={"path": str(tmp_path)})).status_code == 200
    for folder in (home, home / "agents", web_host.settings.paths.config):
        response = await client.put(f"/api/agents/{agent['id']}/mounts", json={"mounts": [{"host_path": str(folder)}]})
        assert response.status_code == 400, folder
        assert "would expose NanoClaw's own data or settings" in response.json()["error"]
    inside = await client.post("/api/agents/allowlist/roots", json={"path": str(home / "agents")})
    assert inside.status_code == 400
    assert "inside NanoClaw's own data" in inside.json()["error"]
    secret = tmp_path / ".ssh"
    secret.mkdir()
    blocked = await client.post("/api/agents/allowlist/roots", json={"path": str(secret)})
    assert blocked.status_code == 400
    assert "blocked pattern" in blocked.json()["error"]


async def test_packages_are_checked_like_the_agents_own_requests(web_host: Host, client: httpx.AsyncClient) -> None:
    agent = await _create(client, "Nano")
    url = f"/api/agents/{agent['id']}/packages"
    bad = await client.put(url, json={"apt": ["ffmpeg; rm -rf /"]})
    assert bad.status_code == 400
    assert "invalid apt package names" in bad.json()["error"]
    saved = await client.put(url, json={"apt": ["ffmpeg"], "pip": ["pandas==2.2.3"]})
    assert saved.status_code == 200
    assert saved.json() == {"agent_id": agent["id"], "apt": ["ffmpeg"], "pip": ["pandas==2.2.3"],
                            "rebuild_on_next_start": True}
    again = await client.put(url, json={"apt": ["ffmpeg"]})
    assert again.json()["rebuild_on_next_start"] is False
    config = await agents_db.get_config(web_host.db, agent["id"])
    assert config is not None
    assert json.loads(config.packages_pip) == ["pandas==2.2.3"]


async def test_mcp_server_env_values_are_never_shown(web_host: Host, client: httpx.AsyncClient) -> None:
    agent = await _create(client, "Nano")
    url = f"/api/agents/{agent['id']}/mcp-servers"
    added = await client.post(url, json={"name": "github", "command": "npx", "args": ["-y", "server-github"],
                                         "env": {"GITHUB_TOKEN": "ghp_secret"}})
    assert added.status_code == 200, added.text
    assert "ghp_secret" not in added.text
    (server,) = (await client.get(url)).json()
    assert server == {"name": "github", "command": "npx", "args": ["-y", "server-github"],
                      "env": {"GITHUB_TOKEN": "••••••"}}
    config = await agents_db.get_config(web_host.db, agent["id"])
    assert config is not None
    assert json.loads(config.mcp_servers)["github"]["env"] == {"GITHUB_TOKEN": "ghp_secret"}

    for body, message in [
        ({"name": "github", "command": "npx"}, "remove it first"),
        ({"name": "nanoclaw", "command": "x"}, "NanoClaw's own tool server"),
        ({"name": "bad name", "command": "x"}, "letters, digits"),
        ({"name": "ok", "command": " "}, "needs a command"),
        ({"name": "ok", "command": "x", "env": {"1BAD": "v"}}, "invalid environment variable names: 1BAD"),
    ]:
        response = await client.post(url, json=body)
        assert response.status_code == 400, body
        assert message in response.json()["error"]
    assert (await client.delete(f"{url}/github")).json() == []
    assert (await client.delete(f"{url}/github")).status_code == 404


async def test_restart_stops_the_agents_running_containers(web_host: Host, client: httpx.AsyncClient) -> None:
    agent = await _create(client, "Nano")
    session_id = await _running_session(web_host, agent["id"])
    assert (await client.get(f"/api/agents/{agent['id']}")).json()["running"] == 1

    result = await client.post(f"/api/agents/{agent['id']}/restart")
    assert result.status_code == 200
    assert result.json()["stopped"] == 1
    assert not await web_host.waker.is_running(session_id)
    detail = (await client.get(f"/api/agents/{agent['id']}")).json()
    assert detail["running"] == 0
    assert detail["session_list"][0]["container_status"] == "stopped"
    assert (await client.post(f"/api/agents/{agent['id']}/restart")).json()["stopped"] == 0


async def test_the_command_line_restart_asks_the_running_host(web_host: Host, client: httpx.AsyncClient) -> None:
    agent = await _create(client, "Nano")
    session_id = await _running_session(web_host, agent["id"])
    code = await asyncio.to_thread(main, ["agents", "restart", "Nano", "--json"])
    assert code == 0
    assert not await web_host.waker.is_running(session_id)
    assert await web_host.db.fetchval("SELECT COUNT(*) FROM web_sessions WHERE origin = 'window'") == 0


async def test_delete_refuses_while_the_agent_answers_in_a_chat_unless_forced(
    web_host: Host, client: httpx.AsyncClient
) -> None:
    agent = await _create(client, "Nano")
    chat = await messaging.create(web_host.db, "test", "family", name="Family", is_group=True)
    await messaging.wire(web_host.db, chat.id, agent["id"], WiringSpec())
    session_id = await _running_session(web_host, agent["id"])

    refused = await client.delete(f"/api/agents/{agent['id']}")
    assert refused.status_code == 400
    assert "answers in 1 chat(s) (Family)" in refused.json()["error"]
    assert await web_host.waker.is_running(session_id)

    deleted = await client.delete(f"/api/agents/{agent['id']}", params={"force": "true"})
    assert deleted.status_code == 200, deleted.text
    body = deleted.json()
    assert (body["unwired_chats"], body["stopped"]) == (1, 1)
    assert not await web_host.waker.is_running(session_id)
    assert (Path(body["moved_to"]) / "workspace" / "MEMORY.md").read_text(encoding="utf-8") == "# Nano\n"
    assert not Path(agent["workspace"]).exists()
    assert (await client.get(f"/api/agents/{agent['id']}")).status_code == 404
    assert await messaging.wirings_for(web_host.db, chat.id) == []


async def test_an_unknown_agent_page_says_so(client: httpx.AsyncClient) -> None:
    response = await client.get("/agents/ag-missing", headers={"accept": "text/html"})
    assert response.status_code == 404
    assert "does not exist" in response.text


async def test_editing_an_agents_memory(web_host: Host, client: httpx.AsyncClient, page: Any, base_url: str) -> None:
    await _create(client, "Nano", model="claude-haiku-4-5")
    await page.goto(f"{base_url}/agents")
    await expect(page.locator("a.agent-link", has_text="Nano")).to_be_visible()
    await page.fill("#create-name", "Research helper")
    await page.select_option("#create-provider", "anthropic")
    await page.fill("#create-model", "claude-sonnet-4-5")
    await shot(page, "agents")
    await page.click("#create-submit")
    await page.wait_for_url(f"{base_url}/agents/ag-*")
    await expect(page.locator("#agent-name")).to_have_text("Research helper")
    await expect(page.locator("#ov-model")).to_have_value("claude-sonnet-4-5")
    await shot(page, "agent-overview")

    await page.click("#tab-memory")
    editor = page.locator("#memory-text")
    await expect(editor).to_have_value("# Research helper\n")
    await expect(page.locator("#memory-save")).to_be_disabled()
    text = "# Research helper\n\n- Sam prefers short answers.\n- Papers go in ~/papers.\n"
    await editor.fill(text)
    await expect(page.locator("#memory-state")).to_have_text("Unsaved changes")
    await page.click("#memory-save")
    await expect(page.locator("#memory-state")).to_have_text("Saved")

    await page.reload()
    await expect(page.locator("#panel-memory")).to_be_visible()  # the tab survives a reload (#memory)
    await expect(page.locator("#memory-text")).to_have_value(text)
    agent = next(a for a in await agents_db.list_all(web_host.db) if a.name == "Research helper")
    memory_file = web_host.settings.paths.agents / agent.folder / "MEMORY.md"
    assert memory_file.read_text(encoding="utf-8") == text
    await shot(page, "agent-memory")


async def test_a_refused_mount_shows_why_on_the_page(
    web_host: Host, client: httpx.AsyncClient, page: Any, base_url: str, tmp_path: Path
) -> None:
    agent = await _create(client, "Nano")
    (tmp_path / "projects" / "notes").mkdir(parents=True)
    await page.goto(f"{base_url}/agents/{agent['id']}#mounts")
    await expect(page.locator("#roots-list")).to_contain_text("No allowed roots yet")
    await page.fill("#mount-host", str(tmp_path / "projects" / "notes"))
    await page.click("#mount-form button[type=submit]")
    await expect(page.locator("#mounts-error")).to_contain_text("the mount allowlist allows no folders yet")
    await shot(page, "agent-mount-refused")

    await page.fill("#root-path", str(tmp_path / "projects"))
    await page.click("#root-form button[type=submit]")
    await expect(page.locator("#roots-list")).to_contain_text(str(tmp_path / "projects"))
    await page.click("#mount-form button[type=submit]")
    await expect(page.locator("#mounts-list")).to_contain_text("/workspace/extra/notes")
    await expect(page.locator("#mounts-error")).to_be_hidden()


async def test_packages_mcp_servers_and_restart_from_the_page(
    web_host: Host, client: httpx.AsyncClient, page: Any, base_url: str
) -> None:
    agent = await _create(client, "Nano")
    session_id = await _running_session(web_host, agent["id"])
    await page.goto(f"{base_url}/agents/{agent['id']}#packages")
    await page.fill("#packages-apt", "ffmpeg poppler-utils")
    await page.fill("#packages-pip", "pandas")
    await page.click("#packages-form button[type=submit]")
    await expect(page.locator("#nc-toasts")).to_contain_text("A new image with these packages is built")
    await expect(page.locator("#packages-apt")).to_have_value("ffmpeg\npoppler-utils")
    await page.fill("#packages-pip", "not a package!")
    await page.click("#packages-form button[type=submit]")
    await expect(page.locator("#packages-error")).to_contain_text("invalid pip package names")

    await page.click("#tab-mcp")
    await page.fill("#mcp-name", "github")
    await page.fill("#mcp-command", "npx")
    await page.fill("#mcp-args", "-y\n@modelcontextprotocol/server-github")
    await page.fill("#mcp-env", "GITHUB_TOKEN=ghp_secret")
    await page.click("#mcp-form button[type=submit]")
    await expect(page.locator("#mcp-list")).to_contain_text("GITHUB_TOKEN=••••••")
    assert "ghp_secret" not in await page.content()
    await shot(page, "agent-mcp")

    await page.click("#tab-restart")
    await expect(page.locator("#restart-state")).to_contain_text("1 container(s) running now")
    await page.click("#restart-agent")
    await expect(page.locator("#restart-result")).to_contain_text("Stopped 1 container(s)")
    assert not await web_host.waker.is_running(session_id)
    await expect(page.locator("#agent-running")).to_have_text("stopped")
