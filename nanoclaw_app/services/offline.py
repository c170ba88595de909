"""Services for a CLI command: the same service layer over the database, without channels or containers.

A command may run while the host runs (SQLite in WAL mode takes both); work it leaves for an agent stays pending and
the host's sweep picks it up. What truly needs the running host (restarting a container) says so.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from nanoclaw_app.core.adapter_contract import ChannelRegistry
from nanoclaw_app.core.approvals.service import ApprovalService
from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.events import EventBus
from nanoclaw_app.core.system_actions import register_approval_handlers
from nanoclaw_app.db.database import Database
from nanoclaw_app.db.migrate import migrate
from nanoclaw_app.db.rows import Session
from nanoclaw_app.host_state import HostState
from nanoclaw_app.secrets.backend import PASSPHRASE_ENV, choose_backend
from nanoclaw_app.secrets.store import SecretStore
from nanoclaw_app.services.auth import WebAuth
from nanoclaw_app.services.context import AppServices
from nanoclaw_app.sessions.store import SessionStore
from nanoclaw_app.settings import Settings

log = logging.getLogger(__name__)


class OfflineWaker:
    """No containers in a CLI process: wakes leave work pending for the host's sweep."""

    async def wake(self, session: Session) -> bool:
        """Nothing to start here; the running host's sweep will."""
        log.info("session %s has work; the running host will pick it up", session.id)
        return False

    async def is_running(self, session_id: str) -> bool:
        """This process runs no containers."""
        return False

    async def stop(self, session_id: str, *, reason: str) -> None:
        """Nothing runs here to stop."""


@asynccontextmanager
async def offline_services(settings: Settings, secrets: SecretStore | None = None) -> AsyncIterator[AppServices]:
    """Open the database and session store for one command; close them after."""
    settings.paths.ensure()
    db = Database(settings.paths.central_db)
    await db.open()
    try:
        await migrate(db)
        store = SessionStore(settings.paths.sessions)
        await store.start()
        try:
            ctx = CoreContext(settings=settings, db=db, store=store, channels=ChannelRegistry(),
                              waker=OfflineWaker(), events=EventBus())
            approvals = ApprovalService(ctx)
            register_approval_handlers(approvals)
            yield AppServices(
                ctx=ctx, secrets=secrets or SecretStore(None, unavailable_reason="not opened by this command"),
                approvals=approvals, auth=WebAuth(db), state=HostState(), live=False,
            )
        finally:
            await store.close()
    finally:
        await db.close()


async def open_secrets(services: AppServices, passphrase: str | None = None) -> None:
    """Choose the secret backend for a command that needs secrets, as the host does at start.

    The passphrase of an encrypted file comes from the caller (a prompt) or ``NANOCLAW_SECRETS_PASSPHRASE``; without
    one the store stays closed and ``services.secrets.unavailable_reason`` says what to do.
    """
    if passphrase is None:
        passphrase = os.environ.get(PASSPHRASE_ENV) or None
    backend, reason = await asyncio.to_thread(choose_backend, services.settings.paths, passphrase)
    services.secrets.set_backend(backend, reason)
