"""What the ``anthropic`` and ``openai`` providers share: settings, query creation and the invalid-session rule.

A subclass names itself, its default model, and how to open one query's ``ModelClient``; the tool loop does the rest.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

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


class ToolLoopProvider:
    """Base of the providers that run our own tool loop over an HTTP model API."""

    name: ClassVar[str] = ""
    default_model: ClassVar[str] = ""
    supports_native_slash_commands = False

    def __init__(
        self,
        config: RunnerConfig,
        *,
        max_retries: int = 2,
        max_tool_rounds: int = MAX_TOOL_ROUNDS,
        max_history_chars: int = MAX_HISTORY_CHARS,
    ) -> None:
        self.model = config.model or self.default_model
        self._base_url = config.base_url
        self._api_key = config.api_key
        self._max_retries = max_retries
        self._max_tool_rounds = max_tool_rounds
        self._max_history_chars = max_history_chars

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

    def _client(self) -> ModelClient:
        """One query's connection to the model API."""
        raise NotImplementedError
