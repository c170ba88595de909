"""Asking the running host to do what only it can (it owns the channels and containers) from a CLI command."""

from __future__ import annotations

from typing import Any

from nanoclaw_app.errors import NotFound, TransientError, UserError
from nanoclaw_app.runfile import read_run_file
from nanoclaw_app.services.context import AppServices

TIMEOUT_SECONDS = 120.0


async def call_running_host(
    services: AppServices, method: str, path: str, *, params: dict[str, str] | None = None,
    json: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """The host's JSON answer, or None when no host runs; errors as the app would show them.

    The command signs in with a session of its own, written straight into the shared database, and signs out after.
    """
    import httpx

    from nanoclaw_app.services.auth import COOKIE
    from nanoclaw_app.web.app import CSRF_COOKIE, CSRF_HEADER

    record = read_run_file(services.settings.paths)
    url = str(record.get("url") or "") if record else ""
    if not url:
        return None
    cookie = await services.auth.window_session()
    try:
        async with httpx.AsyncClient(base_url=url.rstrip("/"), timeout=TIMEOUT_SECONDS,
                                     cookies={COOKIE: cookie}) as client:
            await client.get("/health")  # any GET hands out the CSRF cookie a write must echo
            headers = {CSRF_HEADER: client.cookies.get(CSRF_COOKIE) or "", "accept": "application/json"}
            response = await client.request(method, path, params=params, json=json, headers=headers)
    except httpx.HTTPError as err:
        raise TransientError(f"NanoClaw runs at {url} but did not answer ({err}); try again, or use the app") from err
    finally:
        await services.auth.sign_out(cookie)
    try:
        data = response.json()
    except ValueError:
        data = {"error": response.text[:200]}
    if response.is_success and isinstance(data, dict):
        return data
    message = str((data.get("error") if isinstance(data, dict) else None)
                  or f"the running NanoClaw answered {response.status_code}")
    if response.status_code == 404:
        raise NotFound(message)
    if response.status_code >= 500:
        raise TransientError(message)
    raise UserError(message)
