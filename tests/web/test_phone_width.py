"""On a phone, no page is wider than the screen: wide parts (tables) scroll in their own box."""

from __future__ import annotations

from typing import Any

PAGES = ("chat", "agents", "channels", "chats", "people", "approvals", "tasks", "activity", "settings")


async def test_no_page_is_wider_than_a_phone(page: Any, base_url: str) -> None:
    await page.set_viewport_size({"width": 390, "height": 844})
    too_wide = {}
    for path in PAGES:
        await page.goto(f"{base_url}/{path}")
        await page.wait_for_load_state("networkidle")
        width = await page.evaluate("document.documentElement.scrollWidth")
        if width > 390:
            too_wide[path] = width
    assert too_wide == {}
