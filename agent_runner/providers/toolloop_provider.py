"""What the ``anthropic`` and ``openai`` providers share: settings, query creation and the invalid-session rule.

A subclass names itself, its default model, where its API is, and how to open one query's ``ModelClient``; the tool
loop does the rest.

With a gateway socket (Linux containers) every query of this provider shares one ``httpx2`` client whose transport
connects to that unix socket; the host part of ``base_url`` is then only a label. A call that fails there without any
HTTP answer (the socket is missing, refuses, or is dropped before the response) means the host is gone: see
``model_http.lost_gateway``.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

import httpx2

from agent_runner.config import RunnerConfig
from agent_runner.providers.base import Query
from agent_runner.providers.model_http import TIMEOUT, ModelEndpoint
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


class ToolLoopProvider:
    """Base of the providers that run our own tool loop over an HTTP model API."""

    name: ClassVar[str] = ""
    default_model: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    api_key_env: ClassVar[str] = ""
    base_url_env: ClassVar[str] = ""
    """Read as the SDK reads them when no key or base URL is configured (outside a container)."""
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
        """Close the shared gateway HTTP client (queries close their own clients)."""
        http, self._http = self._http, None
        if http is not None:
            await http.aclose()

    def _endpoint(self, path: str, headers: Mapping[str, str]) -> ModelEndpoint:
        """One query's route to the API: over the shared gateway client, or a client of its own over TCP."""
        api_key = self._api_key or os.environ.get(self.api_key_env)
        if not api_key:
            raise ValueError(f"no API key: set the model token (or {self.api_key_env})")
        base_url = self._base_url or os.environ.get(self.base_url_env) or self.default_base_url
        shared = self._gateway_http()
        return ModelEndpoint(
            shared or httpx2.AsyncClient(timeout=TIMEOUT),
            base_url=base_url,
            path=path,
            headers={"authorization": f"Bearer {api_key}", **headers},
            max_retries=self._max_retries,
            owns_http=shared is None,
            over_socket=shared is not None,
        )

    def _gateway_http(self) -> httpx2.AsyncClient | None:
        """The HTTP client over the gateway socket, made on first use; None means each query opens its own over TCP."""
        if self._gateway_socket is None:
            return None
        if self._http is None:
            # The socket speaks plain HTTP: a context trusting no CA (so any TLS would fail) spares loading the
            # system's CA bundle, ~60 ms on a fresh container's path to its first model call.
            no_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            transport = httpx2.AsyncHTTPTransport(uds=str(self._gateway_socket), verify=no_tls)
            self._http = httpx2.AsyncClient(transport=transport, timeout=TIMEOUT)
        return self._http

    def _client(self) -> ModelClient:
        """One query's connection to the model API."""
        raise NotImplementedError
