"""While the agent waits on a question card, the in-app chat says so instead of "… is typing", a new message gets a
note that it is read after the answer, and a message that is one of the card's options answers the card."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from agent_runner.protocol import AskQuestionOut
from nanoclaw_app.db import agents, questions
from nanoclaw_app.host import Host
from nanoclaw_app.services import chat
from tests.fakes.container import write_out
from tests.web.conftest import shot
from tests.web.test_chat import open_chat, owner_session

WAITING = "Nano is waiting for your answer to the question above."


@pytest.fixture
async def agent_id(web_host: Host) -> str:
    agent = await agents.create(web_host.db, "Nano")
    await chat.ensure_owner_chat(web_host.services, agent.id)
    return agent.id


async def say(page: Any, text: str) -> None:
    await page.locator("#chat-text").fill(text)
    await page.locator("#chat-text").press("Enter")


async def ask_about_lunch(web_host: Host, page: Any, base_url: str, agent_id: str, question_id: str,
                          pizza: str) -> tuple[Path, Any]:
    """The owner asks in the chat; the agent answers with a question card (Pizza or Soup). Returns its folder, card."""
    await open_chat(page, base_url)
    await say(page, "plan lunch")
    await expect(page.locator("li.msg.theirs")).to_have_count(1)
    _, folder = await owner_session(web_host, agent_id)
    card = AskQuestionOut(question_id=question_id, title="Lunch", question="Pizza or soup today?",
                          options=[{"label": pizza, "value": "0"}, {"label": "Soup", "value": "1"}])
    write_out(folder, card.to_json(), channel_type="webchat", platform_id="owner")
    return folder, page.locator("li.msg.has-card")


async def test_a_waiting_question_is_said_in_the_chat_and_a_typed_option_answers_it(
    web_host: Host, page: Any, base_url: str, agent_id: str
) -> None:
    folder, bubble = await ask_about_lunch(web_host, page, base_url, agent_id, "q-lunch", "🍕 Pizza")
    await expect(bubble.locator(".card-title")).to_have_text("Lunch")

    webchat = web_host.channels.get("webchat")
    assert webchat is not None
    await webchat.set_typing("owner", None)  # the host keeps the indicator on while the agent's turn runs
    await expect(page.locator("#chat-typing-text")).to_have_text(WAITING)
    await shot(page, "chat-question-typing")

    await say(page, "what about dessert?")
    await expect(page.locator("li.msg.mine")).to_have_count(2)
    note = page.locator("li.note.waiting-answer")
    await expect(note).to_contain_text("waiting for your answer to the question above and reads this message after")
    await shot(page, "chat-question-waiting")
    await page.set_viewport_size({"width": 390, "height": 844})
    await shot(page, "chat-question-waiting-phone")

    await say(page, "soup!")
    await expect(bubble.locator(".card-option.chosen")).to_have_text("✓ Soup")
    await expect(page.locator("li.msg.mine")).to_have_count(2)  # an answer, not one more message
    stored = await questions.get(web_host.db, "q-lunch")
    assert stored is not None
    assert stored.answered_at is not None
    answer = await web_host.store.read(
        folder, lambda conn: conn.execute("SELECT content FROM messages_in WHERE id = 'q-lunch:answer'").fetchone(),
        with_outbound=False,
    )
    assert json.loads(answer[0])["selected_option"] == "1"

    await webchat.set_typing("owner", None)
    await expect(page.locator("#chat-typing-text")).to_have_text("Nano is typing…")


async def test_without_an_open_question_a_typed_option_word_is_an_ordinary_message(
    web_host: Host, page: Any, base_url: str, agent_id: str
) -> None:
    _, bubble = await ask_about_lunch(web_host, page, base_url, agent_id, "q-done", "Pizza")
    await bubble.get_by_role("button", name="Pizza").click()
    await expect(bubble.locator(".card-option.chosen")).to_have_text("✓ Pizza")

    await say(page, "soup")
    await expect(page.locator("li.msg.theirs", has_text="echo: soup")).to_have_count(1)
    await expect(page.locator("li.note.waiting-answer")).to_have_count(0)
    await expect(bubble.locator(".card-option.chosen")).to_have_text("✓ Pizza")
