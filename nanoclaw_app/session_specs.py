"""What a session's container runs and mounts, worked out just before it starts (the waker's ``prepare``)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from nanoclaw_app.core.context import CoreContext
from nanoclaw_app.core.projection import project
from nanoclaw_app.db import agents as agents_db
from nanoclaw_app.db import users as users_db
from nanoclaw_app.db.rows import Session
from nanoclaw_app.errors import ConfigError
from nanoclaw_app.runtime.base import ExtraMount, SessionSpec
from nanoclaw_app.runtime.mounts import MountRequest, load_allowlist, resolve_mounts
from nanoclaw_app.services.agents import skills as agent_skills
from nanoclaw_app.services.key_gate import KeyGate
from nanoclaw_app.settings import Settings

log = logging.getLogger(__name__)


class SessionSpecs:
    """Builds a :class:`SessionSpec` from the agent's config and the settings of the moment (they may reload)."""

    def __init__(self, ctx: CoreContext, settings: Callable[[], Settings], key_gate: KeyGate, *,
                 uses_model_keys: bool) -> None:
        self._ctx = ctx
        self._settings = settings
        self._key_gate = key_gate
        self._uses_model_keys = uses_model_keys

    async def build(self, session: Session) -> SessionSpec:
        """Before a container starts: project destinations and routing, and say what to run and mount.

        Raises ``WaitingForUser`` when the agent's model key cannot be used now: its messages wait for the user.
        """
        db, settings = self._ctx.db, self._settings()
        config = await agents_db.get_config(db, session.agent_group_id)
        provider = session.agent_provider or (config.provider if config else "claude")
        if self._uses_model_keys:
            await self._key_gate.check(provider)
        await project(self._ctx, session)
        agent = await agents_db.get(db, session.agent_group_id)
        folder = agent.folder if agent is not None else session.agent_group_id
        agent_dir = settings.paths.agents / folder
        agent_dir.mkdir(parents=True, exist_ok=True)
        admins = [
            *await users_db.owners(db),
            *await users_db.global_admins(db),
            *await users_db.scoped_admins(db, session.agent_group_id),
        ]
        env = {
            "NANOCLAW_TZ_NAME": settings.timezone,
            "NANOCLAW_ASSISTANT_NAME": (config.assistant_name if config else None) or (agent.name if agent else "Nano"),
            "NANOCLAW_MAX_MESSAGES_PER_PROMPT": str(
                (config.max_messages_per_prompt if config else None) or settings.max_messages_per_prompt
            ),
            "NANOCLAW_ADMIN_USER_IDS": ",".join(dict.fromkeys(admins)),
        }
        if config is not None and config.mcp_servers not in ("", "{}"):
            env["NANOCLAW_MCP_SERVERS"] = config.mcp_servers
        if config is not None and (skills_off := agent_skills.runner_value(config.skills)):
            env[agent_skills.SKILLS_OFF_ENV] = skills_off
        return SessionSpec(
            session_id=session.id,
            agent_group_id=session.agent_group_id,
            log_path=settings.paths.container_log(session.id),
            session_dir=self._ctx.store.dir(session.agent_group_id, session.id),
            agent_dir=agent_dir,
            provider=provider,
            model=config.model if config else None,
            env=env,
            mounts=self._extra_mounts(session, settings, config.additional_mounts if config else "[]"),
            packages_apt=tuple(_json_strings(config.packages_apt if config else "[]")),
            packages_pip=tuple(_json_strings(config.packages_pip if config else "[]")),
        )

    def _extra_mounts(self, session: Session, settings: Settings, raw: str) -> tuple[ExtraMount, ...]:
        """The agent's extra folders that the allowlist permits; refusals are logged and shown, never fatal."""
        events = self._ctx.events
        try:
            items = json.loads(raw or "[]")
            requests = [MountRequest.from_json(item) for item in items]
            allowlist = load_allowlist(settings.paths.mount_allowlist)
        except (ValueError, ConfigError) as err:
            log.warning("extra mounts of agent %s ignored: %s", session.agent_group_id, err)
            events.publish("mounts.refused", agent_group_id=session.agent_group_id, reason=str(err))
            return ()
        if not requests:
            return ()
        resolved, refused = resolve_mounts(requests, allowlist, protected=[settings.paths.home, settings.paths.config])
        for item in refused:
            log.warning("mount %s of agent %s refused: %s", item.request.host_path, session.agent_group_id,
                        item.reason)
            events.publish("mounts.refused", agent_group_id=session.agent_group_id,
                           host_path=item.request.host_path, reason=item.reason)
        return tuple(ExtraMount(m.source, m.target, m.read_only) for m in resolved)


def _json_strings(raw: str) -> list[str]:
    """A JSON list of strings from a config column; anything else counts as empty (and is logged)."""
    try:
        value = json.loads(raw or "[]")
    except ValueError:
        log.warning("ignoring malformed package list %r", raw[:100])
        return []
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []
