"""The settings area: timezone, LAN access, spend cap, agent image, CA certificates, and secrets by name.

No response here ever carries a secret's value or a passphrase: secrets go in, names and "is set" come out.
"""

from __future__ import annotations

import asyncio
import zoneinfo
from dataclasses import dataclass
from typing import Any

from litestar import Controller, delete, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.response import Template
from litestar.types import ControllerRouterHandler

from nanoclaw_app.services import app_settings, secrets
from nanoclaw_app.services.app_settings import AppSettings
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.services.secrets import SecretInfo, SecretStatus
from nanoclaw_app.web.pages import page
from nanoclaw_app.web.schemas import Ok


@dataclass
class SettingsChange:
    """Settings to change; a field left out (or null) stays as it is. LAN access has its own endpoint."""

    timezone: str | None = None
    port: int | None = None
    lan_https: bool | None = None
    https_port: int | None = None
    daily_spend_cap_usd: float | None = None
    agent_base_image: str | None = None
    agent_ca_certificates: str | None = None
    anthropic_base_url: str | None = None
    voice_transcription: bool | None = None
    transcription_base_url: str | None = None
    transcription_model: str | None = None
    transcription_key: str | None = None
    channel_settings: dict[str, Any] | None = None
    """The channels' own settings to change, by stored name (``whatsapp_sends_per_minute``)."""


@dataclass
class LanChange:
    """Turn LAN access on (a password is needed unless one is set already) or off."""

    enabled: bool
    password: str | None = None


@dataclass
class SecretValue:
    """A secret's new value (never sent back) and an optional label."""

    value: str
    label: str = ""


@dataclass
class Passphrase:
    """The encrypted secret store's passphrase."""

    passphrase: str
    automatic: bool = False
    """Also keep it on this computer, so the store unlocks by itself at each start."""


class SettingsController(Controller):
    """``/settings`` and its API."""

    @get("/settings", include_in_schema=False)
    async def settings_page(self) -> Template:
        """The settings page; its script loads the data from the API (the channels' sections come from them)."""
        timezones = sorted(await asyncio.to_thread(zoneinfo.available_timezones))
        return page("settings.html", "settings", timezones=timezones, channel_sections=app_settings.page_sections())

    @get("/api/settings", summary="The editable settings and whether a restart is needed")
    async def read(self, services: NamedDependency[AppServices]) -> AppSettings:
        """Values in force now; ``restart_needed`` lists saved ones that apply after a restart."""
        return await app_settings.read_settings(services)

    @put("/api/settings", summary="Change settings")
    async def update(self, services: NamedDependency[AppServices], data: JSONBody[SettingsChange]) -> AppSettings:
        """Validates every given field, saves them and applies what can be applied without a restart."""
        changes = {name: value for name, value in vars(data).items()
                   if value is not None and name != "channel_settings"}
        return await app_settings.update_settings(services, {**changes, **(data.channel_settings or {})})

    @post("/api/settings/lan", status_code=200, summary="Turn LAN access on or off")
    async def lan(self, services: NamedDependency[AppServices], data: JSONBody[LanChange]) -> AppSettings:
        """On needs a password (given now or set before); off signs out every device that used it."""
        return await app_settings.set_lan_access(services, data.enabled, data.password or None)

    @get("/api/secrets", summary="Secret names and whether each is set (never values)")
    async def list_secrets(self, services: NamedDependency[AppServices]) -> list[SecretInfo]:
        """Recorded secrets plus the model keys; ``is_set`` is null while the store is locked."""
        return await secrets.list_secrets(services)

    @put("/api/secrets/{name:str}", summary="Store or replace a secret")
    async def put_secret(
        self, services: NamedDependency[AppServices], name: FromPath[str], data: JSONBody[SecretValue]
    ) -> SecretInfo:
        """The value goes to the secret store only; the answer says it is set, never what it is."""
        await secrets.put_secret(services, name, data.value, label=data.label)
        listed = {item.name: item for item in await secrets.list_secrets(services)}
        return listed[name]

    @delete("/api/secrets/{name:str}", status_code=200, summary="Delete a secret")
    async def delete_secret(self, services: NamedDependency[AppServices], name: FromPath[str]) -> Ok:
        """Removes the value and the name."""
        await secrets.delete_secret(services, name)
        return Ok()

    @get("/api/secrets/status", summary="Where secrets are kept, or what is needed to use them")
    async def status(self, services: NamedDependency[AppServices]) -> SecretStatus:
        """OS keyring, encrypted file, or none yet (locked, or a passphrase to choose)."""
        return await secrets.secret_status(services)

    @post("/api/secrets/unlock", status_code=200, summary="Unlock the encrypted secret store")
    async def unlock(self, services: NamedDependency[AppServices], data: JSONBody[Passphrase]) -> SecretStatus:
        """Needed after each start when secrets are in the encrypted file; a wrong passphrase is a 400."""
        await secrets.unlock(services, data.passphrase, automatic=data.automatic)
        return await secrets.secret_status(services)

    @post("/api/secrets/passphrase", status_code=200, summary="Choose the passphrase of a new encrypted store")
    async def create_passphrase(
        self, services: NamedDependency[AppServices], data: JSONBody[Passphrase]
    ) -> SecretStatus:
        """Only where no OS keyring works; at least 10 characters."""
        await secrets.create_passphrase(services, data.passphrase, automatic=data.automatic)
        return await secrets.secret_status(services)

    @post("/api/app/restart", status_code=202, summary="Restart the host now (to apply what waits for a restart)")
    async def restart(self, services: NamedDependency[AppServices]) -> dict[str, bool]:
        """Answers first, then the host stops and starts again; the page waits for ``/health`` to come back."""
        app_settings.request_restart(services)
        return {"restarting": True}

    @post("/api/secrets/automatic", status_code=200, summary="Start an encrypted store this computer unlocks itself")
    async def create_automatic(self, services: NamedDependency[AppServices]) -> SecretStatus:
        """Only where no OS keyring works: no passphrase to choose; it unlocks by itself after a restart."""
        await secrets.create_automatic(services)
        return await secrets.secret_status(services)

    @post("/api/secrets/change-passphrase", status_code=200, summary="Seal the unlocked store with a new passphrase")
    async def change_passphrase(
        self, services: NamedDependency[AppServices], data: JSONBody[Passphrase]
    ) -> SecretStatus:
        """Also how automatic unlocking is turned off (``automatic`` false) or on for a passphrase the user knows."""
        await secrets.change_passphrase(services, data.passphrase, automatic=data.automatic)
        return await secrets.secret_status(services)


ROUTES: list[ControllerRouterHandler] = [SettingsController]
