"""Hostile files from Slack: names that try to leave the inbox, sizes over the cap (declared or lied about), Slack's
sign-in page instead of the file, and a file address that would carry the bot token to someone else's server.
Each message still reaches the agent, with a note in place of what was refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from nanoclaw_app.host import Host
from nanoclaw_app.settings import Settings, load_settings
from tests.channels.slack.conftest import dm_session, inbound_rows, texts
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_workspace import OWNER, OWNER_DM, TEAM_ID

LIMIT = 4096


@pytest.fixture
def slack_settings(settings: Settings, slack: FakeSlack) -> Settings:
    return load_settings(settings.paths, timezone="Europe/Berlin", port=0, sweep_interval_seconds=0.2,
                         retry_base_seconds=0.05, fallback_poll_seconds=0.2, runtime="local",
                         slack_api_base_url=slack.api_url, slack_ping_interval_seconds=1.0,
                         max_attachment_bytes=LIMIT)


async def answered(slack: FakeSlack, text: str) -> None:
    await slack.wait_for(lambda: any(t.startswith(f"echo: {text}") for t in texts(slack, OWNER_DM)))


def every_file(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


async def test_hostile_names_stay_inside_the_inbox(
    paired: Host, slack: FakeSlack, agent_id: str, tmp_path: Path
) -> None:
    event = slack.push_message(OWNER_DM, OWNER, "names", files=[
        ("../../../../escape.txt", b"one", "text/plain"), ("\u202egnp.exe", b"two", "image/png"),
        ("..", b"three", "text/plain")])
    for item in event["files"]:  # the name as Slack would encode it in the address
        item["url_private_download"] = f"{slack.base_url}/files-pri/{TEAM_ID}-{item['id']}/download/file"
    await answered(slack, "names")
    _, folder = await dm_session(paired, agent_id)
    [row] = [r for r in await inbound_rows(paired, folder) if r.get("text", "").startswith("names")]
    names = [a["name"] for a in row["attachments"]]
    assert len(names) == 3
    assert all("/" not in n and "\u202e" not in n and n not in (".", "..") for n in names)
    inbox = folder / "inbox" / event["ts"]
    assert sorted(p.read_bytes() for p in every_file(inbox)) == [b"one", b"three", b"two"]
    assert not list(tmp_path.rglob("escape.txt"))


async def test_files_over_the_limit_are_not_kept_even_when_slack_is_told_a_smaller_size(
    paired: Host, slack: FakeSlack, agent_id: str
) -> None:
    slack.push_message(OWNER_DM, OWNER, "big", files=[("big.bin", b"x" * (LIMIT + 1), "application/pdf")])
    lying = slack.push_message(OWNER_DM, OWNER, "liar", files=[("small.pdf", b"y" * (LIMIT * 3), "application/pdf")])
    lying["files"][0]["size"] = 10  # the event claims a tiny file; the bytes say otherwise
    await answered(slack, "big")
    await answered(slack, "liar")
    _, folder = await dm_session(paired, agent_id)
    rows = {r["text"].split("\n")[0]: r for r in await inbound_rows(paired, folder)}
    assert "[big.bin was not downloaded" in rows["big"]["text"]
    assert "[small.pdf was not kept" in rows["liar"]["text"]
    assert rows["big"]["attachments"] == rows["liar"]["attachments"] == []
    assert [c for c in slack.calls if c[0] == "download"] == [("download", {"file_id": lying["files"][0]["id"]})]


async def test_a_sign_in_page_instead_of_the_file_is_not_passed_on_as_the_file(
    paired: Host, slack: FakeSlack, agent_id: str
) -> None:
    event = slack.push_message(OWNER_DM, OWNER, "photo", files=[("cat.png", b"\x89PNG fake", "image/png")])
    event["files"][0]["url_private_download"] = f"{slack.base_url}/signin"
    await answered(slack, "photo")
    _, folder = await dm_session(paired, agent_id)
    [row] = [r for r in await inbound_rows(paired, folder) if r["text"].startswith("photo")]
    assert row["attachments"] == []
    assert "sign-in page" in row["text"]


async def test_the_bot_token_never_goes_to_a_file_address_outside_slack(
    paired: Host, slack: FakeSlack, agent_id: str
) -> None:
    event = slack.push_message(OWNER_DM, OWNER, "elsewhere", files=[("a.txt", b"a", "text/plain")])
    event["files"][0]["url_private_download"] = "https://attacker.example/steal"
    event["files"][0]["url_private"] = "http://127.0.0.2:9/steal"
    await answered(slack, "elsewhere")
    _, folder = await dm_session(paired, agent_id)
    [row] = [r for r in await inbound_rows(paired, folder) if r["text"].startswith("elsewhere")]
    assert row["attachments"] == []
    assert "[a.txt could not be downloaded from Slack]" in row["text"]
