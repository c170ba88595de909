"""The Slack workspace the fake server serves: ids, people, conversations, stored files and Block Kit checks.

Kept apart from the server (``slack_api.py``) so tests can name the owner, the stranger and the channels without
reading the HTTP and websocket code. Ids look like Slack's (``T…``, ``U…``, ``C…``, ``D…``, ``F…``) because adapters
tell DMs from channels by them.
"""

from __future__ import annotations

import copy
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

BOT_TOKEN = "xoxb-1111-2222-fakeBotTokenForNanoClaw"
APP_TOKEN = "xapp-1-A0FAKEAPP-3333-fakeAppTokenForNanoClaw"
TEAM_ID = "T0FAKETEAM"
TEAM_NAME = "Nano Test Team"
TEAM_DOMAIN = "nano-test"
APP_ID = "A0FAKEAPP"
BOT_ID = "B0NANOBOT"

MAX_TEXT = 40_000
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_BUTTON_TEXT = 75
MAX_ACTION_ID = 255
MAX_BUTTON_VALUE = 2000
BLOCK_TYPES = frozenset({"section", "actions", "context", "divider", "header", "image", "input", "rich_text",
                         "file", "video", "markdown"})
REACTION_NAME = re.compile(r"^[a-z0-9_+'-]{1,100}$")


@dataclass(frozen=True)
class SlackUser:
    """A member of the workspace (a person, or the bot's own user)."""

    id: str
    name: str
    real_name: str
    is_bot: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The shape ``users.info`` answers with."""
        profile = {"real_name": self.real_name, "display_name": self.name, "real_name_normalized": self.real_name,
                   "display_name_normalized": self.name, "team": TEAM_ID}
        if self.is_bot:
            profile["bot_id"] = BOT_ID
        return {"id": self.id, "team_id": TEAM_ID, "name": self.name, "deleted": False, "real_name": self.real_name,
                "tz": "Europe/Berlin", "tz_label": "Central European Time", "tz_offset": 3600,
                "is_bot": self.is_bot, "is_app_user": False, "is_admin": False, "is_owner": False,
                "updated": 1700000000, "profile": profile}


BOT = SlackUser("U0NANOBOT", "nano", "Nano", is_bot=True)
OWNER = SlackUser("U0OWNER01", "ann", "Ann Koch")
STRANGER = SlackUser("U0STRANGR", "sam", "Sam Tan")
GENERAL = "C0GENERAL"
"""A public channel the bot is a member of."""
OWNER_DM = "D0OWNERDM"
STRANGER_DM = "D0STRNGDM"


@dataclass
class Conversation:
    """A channel or a DM, as ``conversations.info`` describes it."""

    id: str
    name: str = ""
    kind: str = "channel"
    """``channel`` (public), ``group`` (private), ``im`` (a DM with the bot) or ``mpim``."""
    user: str | None = None
    """The person at the other end of a DM."""
    bot_is_member: bool = True

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "created": 1700000000, "is_archived": False,
                                "context_team_id": TEAM_ID}
        if self.kind == "im":
            return data | {"is_im": True, "is_org_shared": False, "user": self.user, "is_user_deleted": False,
                           "priority": 0, "is_open": True}
        return data | {"name": self.name, "is_channel": self.kind == "channel", "is_group": self.kind == "group",
                       "is_im": False, "is_mpim": self.kind == "mpim", "is_private": self.kind != "channel",
                       "is_general": self.id == GENERAL, "is_member": self.bot_is_member,
                       "topic": {"value": ""}, "purpose": {"value": ""}, "num_members": 3}


@dataclass
class StoredFile:
    """A file in the workspace: uploaded by the bot (v2 flow) or shared by a person in a message."""

    id: str
    name: str
    data: bytes | None
    """None until the bytes reach the upload URL."""
    mimetype: str = "application/octet-stream"
    title: str = ""
    user: str = BOT.id
    length: int = 0
    secret: str = ""
    shares: list[tuple[str, str]] = field(default_factory=list)
    """``(channel, ts)`` of every message carrying the file."""

    def to_dict(self, base_url: str) -> dict[str, Any]:
        """The file object of messages and ``files.info``; ``url_private`` points at the fake."""
        ext = self.name.rpartition(".")[2] if "." in self.name else "binary"
        private = f"{base_url}/files-pri/{TEAM_ID}-{self.id}/{self.name}"
        return {"id": self.id, "created": int(time.time()), "timestamp": int(time.time()), "name": self.name,
                "title": self.title or self.name, "mimetype": self.mimetype, "filetype": ext, "pretty_type": ext,
                "user": self.user, "user_team": TEAM_ID, "editable": False, "size": len(self.data or b""),
                "mode": "hosted", "is_external": False, "external_type": "", "is_public": False,
                "url_private": private,
                "url_private_download": f"{base_url}/files-pri/{TEAM_ID}-{self.id}/download/{self.name}",
                "permalink": f"https://{TEAM_DOMAIN}.slack.com/files/{self.user}/{self.id}/{self.name}"}


def default_workspace() -> tuple[dict[str, SlackUser], dict[str, Conversation]]:
    """The bot, an owner and a stranger; a public channel; a DM with each person."""
    users = {u.id: u for u in (BOT, OWNER, STRANGER)}
    conversations = {c.id: c for c in (Conversation(GENERAL, "general"),
                                       Conversation(OWNER_DM, kind="im", user=OWNER.id),
                                       Conversation(STRANGER_DM, kind="im", user=STRANGER.id))}
    return users, conversations


def channel_type(conversation: Conversation) -> str:
    """The ``channel_type`` of message events in this conversation."""
    return conversation.kind


class SlackError(Exception):
    """A Web API refusal: ``{"ok": false, "error": …}`` plus optional extra fields, with an HTTP status."""

    def __init__(self, error: str, *, status: int = 200, extra: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.status = status
        self.extra = extra or {}
        self.headers = headers or {}


def check_blocks(blocks: Any) -> list[dict[str, Any]]:
    """Blocks as Slack stores them (a ``block_id`` on each), or ``invalid_blocks`` with Slack's kind of reasons.

    Slack refuses a whole message for one bad block, so an adapter that builds cards wrongly fails loudly here.
    """
    problems: list[str] = []
    if not isinstance(blocks, list):
        raise SlackError("invalid_blocks_format")
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"must provide no more than {MAX_BLOCKS} items [json-pointer:/blocks]")
    seen_blocks: set[str] = set()
    seen_actions: set[str] = set()
    stored: list[dict[str, Any]] = []
    for index, block in enumerate(blocks):
        where = f"[json-pointer:/blocks/{index}]"
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            problems.append(f"unsupported type {where}")
            continue
        block = dict(block)
        block_id = str(block.setdefault("block_id", f"blk{index}"))  # Slack makes up an id when none is given
        if block_id in seen_blocks:
            problems.append(f"duplicate block_id {where}")
        seen_blocks.add(block_id)
        text = block.get("text")
        if block["type"] == "section" and isinstance(text, dict) and len(str(text.get("text", ""))) > \
                MAX_SECTION_TEXT:
            problems.append(f"must be less than {MAX_SECTION_TEXT + 1} characters {where}/text/text")
        elements = (block.get("elements") or []) if block["type"] == "actions" else []
        for n, element in enumerate(elements):
            problems += _check_element(element, f"[json-pointer:/blocks/{index}/elements/{n}]", seen_actions)
        stored.append(block)
    if problems:
        raise SlackError("invalid_blocks", extra={"errors": problems,
                                                  "response_metadata": {"messages": [f"[ERROR] {p}"
                                                                                     for p in problems]}})
    return stored


def _check_element(element: Any, where: str, seen: set[str]) -> list[str]:
    if not isinstance(element, dict) or "type" not in element:
        return [f"missing required field: type {where}"]
    problems = []
    action_id = str(element.get("action_id", ""))
    if len(action_id) > MAX_ACTION_ID:
        problems.append(f"must be less than {MAX_ACTION_ID + 1} characters {where}/action_id")
    if action_id and action_id in seen:
        problems.append(f"duplicate action_id {where}/action_id")
    seen.add(action_id)
    if element["type"] == "button":
        label = element.get("text")
        if not isinstance(label, dict) or label.get("type") != "plain_text":
            problems.append(f"must be a plain_text object {where}/text")
        elif len(str(label.get("text", ""))) > MAX_BUTTON_TEXT:
            problems.append(f"must be less than {MAX_BUTTON_TEXT + 1} characters {where}/text/text")
        if len(str(element.get("value", ""))) > MAX_BUTTON_VALUE:
            problems.append(f"must be less than {MAX_BUTTON_VALUE + 1} characters {where}/value")
    return problems


def find_button(blocks: list[dict[str, Any]], action_id: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The ``(block, element)`` of the interactive element with ``action_id``, if the message shows one."""
    for block in blocks:
        for element in block.get("elements") or []:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return block, element
        accessory = block.get("accessory")
        if isinstance(accessory, dict) and accessory.get("action_id") == action_id:
            return block, accessory
    return None


def events_api_payload(event: dict[str, Any], event_id: str) -> dict[str, Any]:
    """The ``event_callback`` body around an event, as Socket Mode carries it."""
    return {"token": "fake-verification-token", "team_id": TEAM_ID, "context_team_id": TEAM_ID, "api_app_id": APP_ID,
            "event": event, "type": "event_callback", "event_id": event_id, "event_time": int(time.time()),
            "authorizations": [{"enterprise_id": None, "team_id": TEAM_ID, "user_id": BOT.id, "is_bot": True,
                                "is_enterprise_install": False}],
            "is_ext_shared_channel": False, "event_context": f"4-fake-{event_id}"}


def block_actions_payload(person: SlackUser, conversation: Conversation, message: dict[str, Any],
                          found: tuple[dict[str, Any], dict[str, Any]], value: str | None, *, action_ts: str,
                          response_url: str) -> dict[str, Any]:
    """The ``block_actions`` body of a click on ``found`` (block, element) in ``message``."""
    block, element = found
    action: dict[str, Any] = {"action_id": element["action_id"], "block_id": block["block_id"],
                              "type": element["type"], "action_ts": action_ts}
    if "text" in element:
        action["text"] = element["text"]
    if element["type"] == "button":
        action["value"] = value if value is not None else element.get("value", "")
    container: dict[str, Any] = {"type": "message", "message_ts": message["ts"], "channel_id": conversation.id,
                                 "is_ephemeral": False}
    if "thread_ts" in message:
        container["thread_ts"] = message["thread_ts"]
    return {"type": "block_actions", "user": {"id": person.id, "username": person.name, "name": person.name,
                                              "team_id": TEAM_ID},
            "api_app_id": APP_ID, "token": "fake-verification-token", "container": container,
            "trigger_id": f"{secrets.randbelow(10**10)}.{TEAM_ID}.fake{secrets.token_hex(4)}",
            "team": {"id": TEAM_ID, "domain": TEAM_DOMAIN}, "enterprise": None, "is_enterprise_install": False,
            "channel": {"id": conversation.id, "name": conversation.name or "directmessage"},
            "message": copy.deepcopy(message), "state": {"values": {}}, "response_url": response_url,
            "actions": [action]}
