"""What a model call costs, in USD, from its token counts: the gateway records it and the daily spend cap sums it.

Prices are USD per million tokens, from the providers' pricing pages (platform.claude.com/docs/en/about-claude/pricing
and developers.openai.com/api/docs/pricing) as read in November 2026. When a provider changes a price, change the
tables below; nothing else needs to know.

How a model name is matched: lower-cased, a vendor prefix dropped (``anthropic/claude-sonnet-4.5`` on OpenRouter),
dots turned into dashes (``gpt-4.1`` → ``gpt-4-1``), then the longest table key it starts with, followed by nothing or
by ``-``, ``@``, ``:`` or ``[`` (so dated ids like ``claude-sonnet-4-5-20250929`` and ``gpt-4o-2024-08-06`` match).

Fallback for models not in the tables (documented, because the spend cap depends on it):
1. a model served by a **local** upstream (loopback, a private network address, ``*.local``/``*.lan``/``*.internal``
   or a single-label host: Ollama, LM Studio, vLLM on your own machines) costs **0**;
2. an unknown **Claude** model is priced like the newest model of its family (Fable/Mythos, Opus, Sonnet, Haiku),
   since Anthropic keeps prices within a family stable;
3. any other unknown model is priced at ``FALLBACK`` ($3 in / $15 out, a mid-range frontier price), so the cap still
   counts it rather than treating it as free. A warning is logged once per such model.
Known models are priced even when served locally (a local LiteLLM proxy in front of OpenAI still costs money).

Not modelled: batch/flex/priority tiers, regional (data-residency) surcharges, OpenAI's cache-write surcharge on
GPT-5.6 and later (its usage object does not split writes out; they are priced as plain input), and per-tool fees
other than Anthropic web search.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nanoclaw_app.gateway.metering import Usage

log = logging.getLogger(__name__)

WEB_SEARCH_USD = 0.01
"""Anthropic's server-side web search: $10 per 1,000 searches."""


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens for one model."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    """Anthropic's 5-minute cache write; for OpenAI the input price."""
    cache_write_1h: float
    long_prompt_tokens: int = 0
    """Above this many prompt tokens (input + cache reads + writes) the whole call is billed at the factors below."""
    long_input_factor: float = 1.0
    long_output_factor: float = 1.0


def _claude(inp: float, out: float, read: float | None = None, *, long: tuple[int, float, float] = (0, 1.0, 1.0)
            ) -> Price:
    """Anthropic's multipliers: 5-minute writes 1.25×, 1-hour writes 2×, reads 0.1× of input unless stated."""
    return Price(inp, out, inp / 10 if read is None else read, inp * 1.25, inp * 2, *long)


def _gpt(inp: float, cached: float, out: float, *, long: tuple[int, float, float] = (0, 1.0, 1.0)) -> Price:
    return Price(inp, out, cached, inp, inp, *long)


FREE = Price(0.0, 0.0, 0.0, 0.0, 0.0)

_FABLE = _claude(10, 50, 0.25)
_OPUS = _claude(5, 25)
_OPUS_OLD = _claude(15, 75)
_SONNET = _claude(3, 15)
_SONNET_4_LONG = _claude(3, 15, long=(200_000, 2.0, 1.5))
_HAIKU_4_5 = _claude(1, 5)

ANTHROPIC: dict[str, Price] = {
    "claude-fable-5-1": _FABLE,
    "claude-mythos-5-1": _FABLE,
    "claude-fable-5": _claude(10, 50, 1.0),
    "claude-mythos-5": _claude(10, 50, 1.0),
    "claude-opus-5-5": _claude(4, 20, 0.20),
    "claude-opus-5": _OPUS,
    "claude-opus-4-8": _OPUS,
    "claude-opus-4-7": _OPUS,
    "claude-opus-4-6": _OPUS,
    "claude-opus-4-5": _OPUS,
    "claude-opus-4-1": _OPUS_OLD,
    "claude-opus-4": _OPUS_OLD,
    "claude-3-opus": _OPUS_OLD,
    "claude-sonnet-5-5": _claude(2, 10, 0.10),
    "claude-sonnet-5": _claude(2, 10, 0.20),
    "claude-sonnet-4-6": _SONNET,
    "claude-sonnet-4-5": _SONNET_4_LONG,
    "claude-sonnet-4": _SONNET_4_LONG,
    "claude-3-7-sonnet": _SONNET,
    "claude-3-5-sonnet": _SONNET,
    "claude-haiku-5-5": _claude(0.10, 0.50, 0.01, long=(100_000, 5.0, 5.0)),
    "claude-haiku-4-5": _HAIKU_4_5,
    "claude-3-5-haiku": _claude(0.80, 4),
    "claude-3-haiku": _claude(0.25, 1.25, 0.03),
}

_GPT6_LONG = (272_000, 2.0, 1.5)

OPENAI: dict[str, Price] = {
    "gpt-6-1-sol": _gpt(2, 0.10, 10, long=_GPT6_LONG),
    "gpt-6-1-terra": _gpt(1, 0.05, 5, long=_GPT6_LONG),
    "gpt-6-astra": _gpt(10, 1.0, 50, long=_GPT6_LONG),
    "gpt-6-sol": _gpt(2, 0.20, 10, long=_GPT6_LONG),
    "gpt-6-luna": _gpt(0.10, 0.01, 0.50, long=_GPT6_LONG),
    "gpt-5-6-sol": _gpt(5, 0.50, 30),
    "gpt-5-6-terra": _gpt(2, 0.20, 12),
    "gpt-5-6-luna": _gpt(0.20, 0.02, 1.20),
    "gpt-5-5": _gpt(5, 0.50, 30),
    "gpt-5-4": _gpt(2.50, 0.25, 15),
    "gpt-5-4-mini": _gpt(0.75, 0.075, 4.50),
    "gpt-5-2": _gpt(1.75, 0.175, 14),
    "gpt-5-2-pro": _gpt(21, 21, 168),
    "gpt-5-pro": _gpt(15, 15, 120),
    "gpt-5-1": _gpt(1.25, 0.125, 10),
    "gpt-5": _gpt(1.25, 0.125, 10),
    "gpt-5-mini": _gpt(0.25, 0.025, 2),
    "gpt-5-nano": _gpt(0.05, 0.005, 0.40),
    "gpt-4-1": _gpt(2, 0.50, 8),
    "gpt-4-1-mini": _gpt(0.40, 0.10, 1.60),
    "gpt-4-1-nano": _gpt(0.10, 0.025, 0.40),
    "gpt-4o": _gpt(2.50, 1.25, 10),
    "gpt-4o-mini": _gpt(0.15, 0.075, 0.60),
    "o4-mini": _gpt(1.10, 0.275, 4.40),
    "o3": _gpt(2, 0.50, 8),
    "o3-mini": _gpt(1.10, 0.55, 4.40),
    "o3-pro": _gpt(20, 20, 80),
    "o1": _gpt(15, 7.50, 60),
    "o1-mini": _gpt(1.10, 0.55, 4.40),
    "o1-pro": _gpt(150, 150, 600),
}

AUDIO_PER_MINUTE: dict[str, float] = {
    "whisper-1": 0.006,
    "gpt-4o-transcribe": 0.006,
    "gpt-4o-mini-transcribe": 0.003,
    "whisper-large-v3": 0.111 / 60,  # Groq prices per hour of audio
    "whisper-large-v3-turbo": 0.04 / 60,
    "distil-whisper-large-v3-en": 0.02 / 60,
}
"""USD per minute of audio transcribed; an unknown model on a remote server is counted like ``whisper-1``."""


def audio_cost(model: str, seconds: float, *, local: bool) -> float:
    """USD for transcribing ``seconds`` of audio; free on the user's own machines.

    A local whisper.cpp server takes any model name, ``whisper-1`` included, so the name proves nothing there.
    """
    if local:
        return 0.0
    rate = AUDIO_PER_MINUTE.get(normalise(model), AUDIO_PER_MINUTE["whisper-1"])
    return max(seconds, 0.0) / 60 * rate


FAMILIES: tuple[tuple[str, Price], ...] = (
    ("fable", _FABLE), ("mythos", _FABLE), ("opus", _OPUS), ("sonnet", _claude(2, 10, 0.10)), ("haiku", _HAIKU_4_5),
)
"""Newest price per Claude family, for Claude models newer than the table."""

FALLBACK = _claude(3, 15)
"""Any other unknown model on a remote upstream."""

_BOUNDARY = frozenset("-@:[")


def normalise(model: str) -> str:
    """The form table keys are written in: lower case, no vendor prefix, dashes for dots."""
    return model.strip().lower().rsplit("/", 1)[-1].replace(".", "-")


class PriceBook:
    """Looks prices up by model name, remembering each answer (the same few models repeat on every call)."""

    def __init__(self, table: dict[str, Price] | None = None) -> None:
        self._table = table if table is not None else {**ANTHROPIC, **OPENAI}
        self._keys = sorted(self._table, key=len, reverse=True)
        self._cache: dict[tuple[str, bool], Price] = {}

    def price(self, model: str, *, local: bool) -> Price:
        """The price of ``model``; ``local`` says whether the upstream runs on the user's own machines."""
        cached = self._cache.get((model, local))
        if cached is not None:
            return cached
        price = self._find(normalise(model))
        if price is None:
            price = self._unknown(model, local=local)
        self._cache[(model, local)] = price
        return price

    def cost(self, usage: Usage, *, local: bool) -> float:
        """USD for one call."""
        price = self.price(usage.model, local=local)
        prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
        in_factor = out_factor = 1.0
        if price.long_prompt_tokens and prompt > price.long_prompt_tokens:
            in_factor, out_factor = price.long_input_factor, price.long_output_factor
        write_1h = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
        prompt_cost = (usage.input_tokens * price.input + usage.cache_read_tokens * price.cache_read
                       + (usage.cache_write_tokens - write_1h) * price.cache_write + write_1h * price.cache_write_1h)
        tokens = prompt_cost * in_factor + usage.output_tokens * price.output * out_factor
        searches = usage.web_search_requests * WEB_SEARCH_USD if price is not FREE else 0.0
        return tokens / 1_000_000 + searches

    def _find(self, name: str) -> Price | None:
        for key in self._keys:
            if name.startswith(key) and (len(name) == len(key) or name[len(key)] in _BOUNDARY):
                return self._table[key]
        return None

    def _unknown(self, model: str, *, local: bool) -> Price:
        if local:
            return FREE
        name = normalise(model)
        if name.startswith("claude"):
            for family, price in FAMILIES:
                if family in name:
                    log.warning("model gateway: no price for %r; priced like the newest %s model", model, family)
                    return price
        log.warning("model gateway: no price for %r; counted at the fallback of $%.2f in / $%.2f out per million "
                    "tokens", model, FALLBACK.input, FALLBACK.output)
        return FALLBACK
