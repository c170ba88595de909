"""What the ``anthropic`` and ``openai`` providers share: settings, query creation and the invalid-session rule.

A subclass names itself, its default model, and how to open one query's ``ModelClient``; the tool loop does the rest.

With a gateway socket (Linux containers) every SDK of this provider shares one HTTP client whose transport connects to
that unix socket; the host part of ``base_url`` is then only a label. The SDKs take clients of ``httpx2`` (their fork
of httpx), not ``httpx``: an ``httpx`` object is rejected. A call that fails there without any HTTP answer (the socket
is missing, refuses, or is dropped before the response) means the host is gone: see ``lost_gateway``.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import ClassVar

import httpx2

from agent_runner.config import RunnerConfig
from agent_runner.providers.base import Query
from agent_runner.providers.toolloop import (
    MAX_HISTORY_CHARS,
    MAX_TOOL_ROUNDS,
    ModelClient,
    ToolLoopQuery,
    is_continuation_error,
    tool_cwd_note,
)
from agent_runner.tools.base import ToolSpec
from agent_runner.tools.builtin import builtin_tools


def lost_gateway(error: BaseException) -> bool:
    """True when an SDK connection error was caused by the socket failing before any answer (not a timeout).

    Over a local unix socket there is no network in between: a refused or missing socket, or a connection dropped
    before the response, can only mean the gateway's process is gone.
    """
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, httpx2.TimeoutException):
            return False
        if isinstance(cause, httpx2.NetworkError | httpx2.RemoteProtocolError | ConnectionError | FileNotFoundError):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


class ToolLoopProvider:
    """Base of the providers that run our own tool loop over an HTTP model API."""

    name: ClassVar[str] = ""
    default_model: ClassVar[str] = ""
    supports_native_slash_commands = False

    def __init__(
        self,
        config: RunnerConfig,
        *,
        max_retries: int | None = None,
        max_tool_rounds: int = MAX_TOOL_ROUNDS,
        max_history_chars: int = MAX_HISTORY_CHARS,
    ) -> None:
        self.model = config.model or self.default_model
        self._base_url = config.base_url
        self._api_key = config.api_key
        self._max_retries = config.model_max_retries if max_retries is None else max_retries
        self._gateway_socket = config.gateway_socket
        self._http: httpx2.AsyncClient | None = None
        self._max_tool_rounds = max_tool_rounds
        self._max_history_chars = max_history_chars
        # Made now rather than on the first query: a runner building its provider in the background
        # (``ProviderLoader``) pays for the HTTP stack's import there, off the path to the first model call.
        self._gateway_http()

    def query(
        self, *, prompt: str, continuation: str | None, cwd: Path, system_prompt: str, tools: list[ToolSpec]
    ) -> Query:
        """A query over our tool loop; the built-in tools run in ``cwd`` and ours override same-named ones."""
        return ToolLoopQuery(
            provider_name=self.name,
            make_client=self._client,
            prompt=prompt,
            continuation=continuation,
            system_prompt=system_prompt + tool_cwd_note(cwd),
            tools=[*builtin_tools(cwd), *tools],
            max_tool_rounds=self._max_tool_rounds,
            max_history_chars=self._max_history_chars,
        )

    def is_session_invalid(self, error: BaseException | str) -> bool:
        """Only an unreadable continuation is invalid; API errors leave the conversation intact."""
        return is_continuation_error(error)

    async def aclose(self) -> None:
        """Close the shared gateway HTTP client (queries close their own SDK clients)."""
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    def _gateway_http(self) -> httpx2.AsyncClient | None:
        """The HTTP client over the gateway socket, made on first use; None means each SDK opens its own over TCP."""
        if self._gateway_socket is None:
            return None
        if self._http is None:
            # The socket speaks plain HTTP: a context trusting no CA (so any TLS would fail) spares loading the
            # system's CA bundle, ~60 ms on a fresh container's path to its first model call.
            no_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            self._http = self._http_client(httpx2.AsyncHTTPTransport(uds=str(self._gateway_socket), verify=no_tls))
        return self._http

    def _http_client(self, transport: httpx2.AsyncHTTPTransport) -> httpx2.AsyncClient:
        """An HTTP client over ``transport``; subclasses keep their SDK's defaults (timeouts, redirects)."""
        return httpx2.AsyncClient(transport=transport)

    def _client(self) -> ModelClient:
        """One query's connection to the model API."""
        raise NotImplementedError
