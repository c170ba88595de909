"""One name for one thing: what setup calls a way to reach a model is what the agent pages call the agent's provider,
in plain words; the internal id (``claude``, ``openai``) is left for the command line and a tooltip."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from nanoclaw_app.services.model_check import KINDS, PROVIDER_OF_KIND
from nanoclaw_app.web.strings import Strings
from tests.web.conftest import shot


@pytest.mark.parametrize("kind", KINDS)
def test_each_setup_choice_has_the_same_name_on_the_agent_pages(kind: str) -> None:
    strings = Strings.load()
    setup_name = strings(f"wizard.kind_{kind.removesuffix('_compatible')}")
    agent_name = strings(f"agents.provider_{PROVIDER_OF_KIND[kind]}")

    assert setup_name.startswith(agent_name)  # setup may add "recommended", nothing else
    assert PROVIDER_OF_KIND[kind] not in agent_name.split()  # no bare internal id in a name


async def test_the_agent_list_and_page_name_the_provider_as_setup_does(
    page: Any, base_url: str, client: httpx.AsyncClient
) -> None:
    created = (await client.post("/api/agents", json={"name": "Ada"})).json()  # setup's default: Anthropic
    assert created["provider"] == PROVIDER_OF_KIND["anthropic"]

    await page.goto(f"{base_url}/agents")
    cell = page.locator(f'tr[data-agent-id="{created["id"]}"] td').nth(1)
    await expect(cell).to_contain_text("Anthropic (Claude)")
    assert "claude ·" not in await cell.inner_text()
    assert await cell.locator("span[title=claude]").count() == 1  # the id, for the command line, on hover

    await page.goto(f"{base_url}/agents/{created['id']}")
    chosen = page.locator("#ov-provider option:checked")
    await expect(chosen).to_have_text("Anthropic (Claude)")
    options = await page.locator("#ov-provider option").all_inner_texts()
    assert "OpenAI-compatible server" in options
    assert not any("(" + name + ")" in text for text in options for name in ("claude", "anthropic", "openai"))
    await expect(page.locator("#ov-provider-hint")).to_contain_text("command line: claude, anthropic, openai")
    await shot(page, "agent-provider-names")
    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, "agent-provider-names-phone")
