"""A home user's first run, from the first window to the first reply, counted: clicks, fields, terminal steps, time.

Drives the real app (``nanoclaw serve`` in a fresh home, no OS keyring, the fake model server on 127.0.0.1) in
Chromium through the setup wizard's happy path: paste the API key, check it (the secret store is made by the same
click, unlocking automatically), containers ready, skip WhatsApp and Telegram (pairing a phone happens on the phone),
name the agent, say hello. The window app signs itself in; here the one-time link stands in for that
and is not counted. Every action goes through ``click``/``fill`` below, which count it.

``--runtime podman`` (the default) uses the real engine: the agent image must be built (``nanoclaw image`` or the
podman tests), else the wizard builds it and the time shows that. ``--runtime local`` runs agents as local processes.
Progress goes to stderr; the last line is one JSON object. Targets: <= 8 clicks, <= 2 fields, 0 terminal steps.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGETS = {"clicks": 8, "fields": 2, "terminal_steps": 0}
KEY = "sk-ant-api03-first-run-bench-key-0123456789abcdef"
WAIT_MS = 300_000


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Counted:
    """The page, with every click and every field a person fills counted."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.clicks = 0
        self.fields = 0

    async def click(self, selector: str) -> None:
        self.clicks += 1
        await self.page.click(selector)

    async def fill(self, selector: str, text: str) -> None:
        self.fields += 1
        await self.page.fill(selector, text)


async def journey(base: str, link: str) -> dict[str, Any]:
    from playwright.async_api import async_playwright, expect

    from tests.web.conftest import CHROMIUM, CHROMIUM_FLAGS

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = await (await browser.new_context(viewport={"width": 1280, "height": 800})).new_page()
        user = Counted(page)
        started = time.perf_counter()
        await page.goto(link)  # what the window does by itself
        await expect(page.locator('.wz-step[data-step="1"]')).to_be_visible()
        say("step 1: model access")
        await user.fill("#api-key", KEY)
        await user.click("#model-submit")
        say("step 2: containers")
        await expect(page.locator("#engine-next")).to_be_enabled(timeout=WAIT_MS)
        await user.click("#engine-next")
        say("step 3 and 4: phone channels, skipped")
        await user.click("#whatsapp-skip")
        await user.click("#telegram-skip")
        say("step 5: the agent's name")
        await user.fill("#agent-name", "Ada")
        await user.click("#agent-submit")
        say("step 6: say hello")
        await user.click("#test-send")
        done, failure = page.locator('.wz-step[data-step="7"]'), page.locator("#test-failure")
        await expect(page.locator('.wz-step[data-step="7"]:visible, #test-failure:visible')).to_have_count(
            1, timeout=WAIT_MS)
        if await failure.is_visible():
            raise SystemExit(f"the agent did not answer: {await failure.inner_text()}")
        await expect(done).to_be_visible()
        seconds = time.perf_counter() - started
        reply = await page.locator("#done-chat").inner_text()
        await browser.close()
    return {"clicks": user.clicks, "fields": user.fields, "terminal_steps": 0,
            "seconds_to_first_reply": round(seconds, 1), "reply": reply.strip()[-200:]}


async def main_async(runtime: str, base_image: str) -> dict[str, Any]:
    from tests.fakes.anthropic_server import FakeAnthropic
    from tests.web.home_user import answer  # answers each message where it came from, as a real model would

    fake = FakeAnthropic(responder=answer)
    await fake.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            port = free_port()
            ca = "/etc/ssl/certs/ca-certificates.crt"
            env = {**os.environ, "NANOCLAW_HOME": f"{tmp}/home", "NANOCLAW_CONFIG_DIR": f"{tmp}/config",
                   "NANOCLAW_RUNTIME": runtime, "NANOCLAW_ANTHROPIC_BASE_URL": fake.url,
                   "NANOCLAW_AGENT_BASE_IMAGE": base_image,
                   "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring"}  # a computer with no OS keyring
            if Path(ca).exists():
                env["NANOCLAW_AGENT_CA_CERTIFICATES"] = ca  # this machine's TLS-intercepting proxy
            server = subprocess.Popen([sys.executable, "-m", "nanoclaw_app", "serve", "--port", str(port)],
                                      env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                base = f"http://127.0.0.1:{port}"
                link = await asyncio.to_thread(_sign_in_link, env, server)
                try:
                    result = await journey(base, link)
                except BaseException:
                    _show_logs(Path(tmp) / "home" / "logs")
                    raise
            finally:
                server.terminate()
                server.wait(60)
    finally:
        await fake.stop()
    result.update(runtime=runtime, targets=TARGETS,
                  targets_met=all(result[key] <= limit for key, limit in TARGETS.items()))
    return result


def _show_logs(folder: Path) -> None:
    """What the app logged, for a run that did not reach the first reply."""
    for log in sorted(folder.rglob("*.log")):
        say(f"--- {log.relative_to(folder)} (last lines)")
        say("\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-25:]))


def _sign_in_link(env: dict[str, str], server: subprocess.Popen[bytes]) -> str:
    """The one-time link the window would use (``nanoclaw open``), once the app answers."""
    deadline = time.monotonic() + 120
    while True:
        if server.poll() is not None:
            raise SystemExit(f"nanoclaw serve exited with {server.returncode}")
        done = subprocess.run([sys.executable, "-m", "nanoclaw_app", "open"], env=env, capture_output=True,
                              text=True, check=False)
        words = [word for word in done.stdout.split() if "login?token=" in word]
        if words:
            return words[0]
        if time.monotonic() > deadline:
            raise SystemExit(f"no sign-in link: {done.stdout}{done.stderr}")
        time.sleep(0.3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runtime", default="podman", choices=["podman", "local"])
    parser.add_argument("--base-image", default="localhost/nanoclaw-base:bookworm",
                        help="the agent base image (this machine has no registry; see libraries.md §7)")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args.runtime, args.base_image))))


if __name__ == "__main__":
    main()
