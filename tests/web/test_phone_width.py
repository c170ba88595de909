"""On a phone (390 × 844) every page starts with its own content under a slim bar: the menu folds behind a button,
the parts' status is a dot that opens the details, the chat's message box sits at the bottom within a thumb's reach,
and no page is wider than the screen (wide parts, such as tables, scroll in their own box). From 900 px wide the
sidebar stays as it was."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import expect

from nanoclaw_app.db import agents
from nanoclaw_app.host import Host
from nanoclaw_app.secrets.encrypted_file import EncryptedFileKeyring, secrets_file
from nanoclaw_app.services import chat
from tests.web.conftest import shot

TITLES = {"chat": "Chat", "agents": "Agents", "channels": "Channels", "chats": "Chats", "people": "People",
          "approvals": "Approvals", "credentials": "Credentials", "tasks": "Scheduled tasks", "activity": "Activity",
          "settings": "Settings"}
PAGES = tuple(TITLES)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


async def open_page(page: Any, base_url: str, path: str) -> None:
    await page.goto(f"{base_url}/{path}")
    await page.wait_for_load_state("networkidle")


async def box(page: Any, selector: str) -> dict[str, float]:
    found = await page.locator(selector).bounding_box()
    assert found is not None, f"{selector} is not on the page"
    return dict(found)


@pytest.fixture
async def agent_id(web_host: Host) -> str:
    agent = await agents.create(web_host.db, "Nano")
    await chat.ensure_owner_chat(web_host.services, agent.id)
    return agent.id


async def pages_wider_than_a_phone(page: Any, base_url: str, label: str) -> dict[str, int]:
    await page.set_viewport_size(PHONE)
    too_wide = {}
    for path in PAGES:
        await open_page(page, base_url, path)
        width = await page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            too_wide[path] = width
        await shot(page, f"phone-{path}{label}")
    return too_wide


async def test_no_page_is_wider_than_a_phone(page: Any, base_url: str) -> None:
    assert await pages_wider_than_a_phone(page, base_url, "") == {}


async def test_no_page_is_wider_than_a_phone_while_the_keys_are_locked(page: Any, base_url: str,
                                                                       web_host: Host) -> None:
    EncryptedFileKeyring.create(secrets_file(web_host.settings.paths), "correct horse battery", n=2**14)
    web_host.secrets.set_backend(None, "the encrypted secret store needs its passphrase: unlock it in the app")
    assert await pages_wider_than_a_phone(page, base_url, "-locked") == {}
    await open_page(page, base_url, "chat")
    await expect(page.locator("#nc-locked")).to_be_visible()
    composer = await box(page, "#composer")  # the unlock form sits above the chat; the message box stays in reach
    assert composer["y"] + composer["height"] == pytest.approx(PHONE["height"], abs=1)


async def test_every_page_starts_with_its_content_under_a_bar_naming_the_page(page: Any, base_url: str) -> None:
    await page.set_viewport_size(PHONE)
    buried = {}
    for path in PAGES:
        await open_page(page, base_url, path)
        await expect(page.locator("#nc-nav")).to_be_hidden()
        await expect(page.locator(".topbar-title")).to_have_text(TITLES[path])
        top = (await box(page, "#main"))["y"]
        if top > 80:  # the bar is about 50 px; the whole menu used to sit above the page, some 450 px
            buried[path] = top
    assert buried == {}


async def test_the_menu_opens_from_its_button_and_closes_with_escape(page: Any, base_url: str) -> None:
    await page.set_viewport_size(PHONE)
    await open_page(page, base_url, "tasks")
    button = page.get_by_role("button", name="Menu")
    await expect(button).to_have_attribute("aria-expanded", "false")
    await expect(button).to_have_attribute("aria-controls", "nc-nav")

    await button.focus()
    await page.keyboard.press("Enter")
    await expect(button).to_have_attribute("aria-expanded", "true")
    menu = page.get_by_role("navigation", name="Menu")
    await expect(menu).to_be_visible()
    await expect(menu.locator("a[aria-current=page]")).to_have_text("Scheduled tasks")
    await expect(menu.locator("a[aria-current=page]")).to_be_focused()  # the keyboard lands in the open menu
    await page.keyboard.press("Tab")
    await expect(menu.get_by_role("link", name="Activity")).to_be_focused()
    await shot(page, "phone-menu-open")

    await page.keyboard.press("Escape")
    await expect(menu).to_be_hidden()
    await expect(button).to_have_attribute("aria-expanded", "false")
    assert await page.evaluate("document.activeElement.id") == "nc-menu-button"

    await button.click()
    await page.locator("#nc-nav-backdrop").click(position={"x": 200, "y": 780})  # a tap beside the menu closes it
    await expect(menu).to_be_hidden()

    await button.click()
    await menu.get_by_role("link", name="People").click()
    await expect(page).to_have_url(f"{base_url}/people")
    await expect(page.locator(".topbar-title")).to_have_text("People")
    await expect(menu).to_be_hidden()


async def test_a_problem_is_a_dot_in_the_bar_that_opens_the_details(page: Any, base_url: str,
                                                                    web_host: Host) -> None:
    await page.set_viewport_size(PHONE)
    await open_page(page, base_url, "chat")
    dot = page.locator("#nc-health-dot")
    await expect(dot).to_have_class("health-dot good")
    web_host._component("channel:whatsapp", "failed: no network")  # what the host reports when a channel fails
    await expect(dot).to_have_class("health-dot bad")
    await expect(dot).to_contain_text("Needs attention")
    await expect(dot).to_have_accessible_name(re.compile(r"^Needs attention.*whatsapp", re.IGNORECASE))
    await expect(page.locator("#nc-health")).to_be_hidden()  # no red block above the chat
    assert (await box(page, "#main"))["y"] < 80
    await shot(page, "phone-health-problem")

    await dot.click()
    await expect(page.locator("#nc-health")).to_be_visible()
    await expect(page.locator("#nc-health")).to_contain_text(re.compile("whatsapp", re.IGNORECASE))
    await expect(page.get_by_role("button", name="Menu")).to_have_attribute("aria-expanded", "true")
    await shot(page, "phone-health-details")


async def test_the_chat_is_used_with_one_thumb(page: Any, base_url: str, agent_id: str) -> None:
    await page.set_viewport_size(PHONE)
    await page.goto(f"{base_url}/chat")
    await page.wait_for_selector("body[data-chat-ready=true]")
    assert await page.evaluate("window.scrollY") == 0  # nothing had to scroll away to bring the box into view
    for selector in ("#chat-text", "#chat-send"):
        found = await box(page, selector)
        assert found["y"] + found["height"] <= PHONE["height"], f"{selector} is below the screen"
    assert (await box(page, "#chat-send"))["height"] >= 44  # a thumb-sized target

    long_text = "\n".join(f"line {n}" for n in range(40))  # the conversation grows far past the screen
    await page.locator("#chat-text").fill(long_text)
    await page.locator("#chat-send").click()
    reply = page.locator("li.msg.theirs .msg-text")
    await expect(reply).to_contain_text("line 39")

    composer = await box(page, "#composer")
    assert composer["y"] + composer["height"] == pytest.approx(PHONE["height"], abs=1)  # pinned at the bottom
    assert await page.evaluate("document.documentElement.scrollHeight") <= PHONE["height"]  # only the talk scrolls
    await expect(reply).to_be_in_viewport()  # the newest reply is in view, under the bar and above the box
    last = await box(page, "li.msg.theirs")
    assert last["y"] + last["height"] <= composer["y"] + 1
    await shot(page, "phone-chat-conversation")


async def test_a_wide_window_keeps_the_sidebar(page: Any, base_url: str, web_host: Host) -> None:
    await page.set_viewport_size(DESKTOP)
    for path in PAGES:
        await open_page(page, base_url, path)
        await expect(page.locator("#nc-nav")).to_be_visible()
        await expect(page.locator(".topbar")).to_be_hidden()
        assert (await box(page, "#nc-nav"))["x"] == 0
        assert (await box(page, "#main"))["x"] >= 200
    web_host._component("channel:whatsapp", "failed: no network")
    await expect(page.locator("#nc-health")).to_contain_text(re.compile("whatsapp", re.IGNORECASE))
    await shot(page, "desktop-settings-health-problem")


async def test_on_a_phone_a_toast_shows_at_the_top_and_a_tap_clears_it(page: Any, base_url: str) -> None:
    await page.set_viewport_size(PHONE)
    await open_page(page, base_url, "settings")
    await page.evaluate("NC.toast('Saved')")
    toast = page.locator("#nc-toasts .toast").last
    await expect(toast).to_be_visible()
    where = await toast.bounding_box()
    assert where is not None
    assert where["y"] + where["height"] < PHONE["height"] / 3  # the buttons and the message box at the bottom stay free
    await toast.click()
    await expect(page.locator("#nc-toasts .toast")).to_have_count(0)
