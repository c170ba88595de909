"""Map our exceptions to HTTP: a clear message for the user, never a traceback, and a log line for the owner."""

from __future__ import annotations

import logging
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.response import Template
from litestar.status_codes import (
    HTTP_400_BAD_REQUEST,
    HTTP_401_UNAUTHORIZED,
    HTTP_403_FORBIDDEN,
    HTTP_404_NOT_FOUND,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)

from nanoclaw_app.errors import ConfigError, NanoClawError, NotFound, PermissionDenied, TransientError, UserError

log = logging.getLogger(__name__)


def _wants_html(request: Request[Any, Any, Any]) -> bool:
    return not request.url.path.startswith("/api/") and "text/html" in request.headers.get("accept", "")


def _json(status: int, message: str, **extra: Any) -> Response[dict[str, Any]]:
    return Response({"error": message, **extra}, status_code=status)


def nanoclaw_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Our own errors carry a message meant for the user."""
    if isinstance(exc, NotFound):
        status = HTTP_404_NOT_FOUND
    elif isinstance(exc, PermissionDenied):
        status = HTTP_403_FORBIDDEN
    elif isinstance(exc, UserError | ConfigError):
        status = HTTP_400_BAD_REQUEST
    elif isinstance(exc, TransientError):
        status = HTTP_503_SERVICE_UNAVAILABLE
    else:
        status = HTTP_500_INTERNAL_SERVER_ERROR
        log.error("%s %s failed: %s", request.method, request.url.path, exc)
    return _json(status, str(exc))


def not_authorized(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """401; a page request gets the sign-in page instead of JSON."""
    if _wants_html(request):
        services = request.app.state.get("services")
        has_password = bool(services is not None and services.auth.password_set)
        return Template(template_name="login.html", context={"area": "login", "has_password": has_password},
                        status_code=HTTP_401_UNAUTHORIZED)
    detail = exc.detail if isinstance(exc, HTTPException) else "sign in first"
    return _json(HTTP_401_UNAUTHORIZED, detail)


def http_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Litestar's own errors (validation, 404 route, CSRF) as ``{"error": …}`` like ours."""
    assert isinstance(exc, HTTPException)
    extra: dict[str, Any] = {}
    if exc.extra:
        extra["detail"] = exc.extra
    if exc.status_code == HTTP_403_FORBIDDEN and "CSRF" in str(exc.detail):
        return _json(exc.status_code, "the page is out of date (security token); reload it and try again")
    return _json(exc.status_code, str(exc.detail), **extra)


def unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A bug: log the traceback, tell the user where to look."""
    log.exception("%s %s crashed", request.method, request.url.path, exc_info=exc)
    return _json(HTTP_500_INTERNAL_SERVER_ERROR, "something went wrong inside NanoClaw; the log has the details")


HANDLERS: dict[type[Exception] | int, Any] = {
    NotAuthorizedException: not_authorized,
    HTTPException: http_error,
    NanoClawError: nanoclaw_error,
    Exception: unexpected,
}
