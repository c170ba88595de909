"""Costs per call: known models by their published prices, unknown ones by the documented fallback."""

from __future__ import annotations

import pytest

from nanoclaw_app.gateway.metering import Usage
from nanoclaw_app.gateway.pricing import FALLBACK, FREE, PriceBook

MILLION = 1_000_000


@pytest.mark.parametrize(("model", "usd_in", "usd_out"), [
    ("claude-sonnet-4-6", 3, 15),
    ("claude-sonnet-4-5-20250929", 3, 15),
    ("claude-opus-4-20250514", 15, 75),
    ("claude-opus-4-5-20251101", 5, 25),
    ("claude-haiku-4-5-20251001", 1, 5),
    ("claude-sonnet-5-5", 2, 10),
    ("anthropic/claude-sonnet-4.5", 3, 15),
    ("gpt-4o-2024-08-06", 2.5, 10),
    ("gpt-4o-mini-2024-07-18", 0.15, 0.60),
    ("openai/gpt-4.1-mini", 0.40, 1.60),
    ("gpt-5.4-mini", 0.75, 4.50),
    ("gpt-6.1-terra", 1, 5),
    ("o3-mini", 1.10, 4.40),
])
def test_known_models_cost_their_published_price_per_million_tokens(model: str, usd_in: float, usd_out: float) -> None:
    book = PriceBook()

    # 100,000 tokens: below every long-prompt tier
    assert book.cost(Usage(model, input_tokens=100_000), local=False) == pytest.approx(usd_in / 10)
    assert book.cost(Usage(model, output_tokens=100_000), local=True) == pytest.approx(usd_out / 10)


def test_cache_reads_and_writes_are_priced_apart_with_the_one_hour_premium() -> None:
    usage = Usage("claude-sonnet-4-6", cache_read_tokens=MILLION, cache_write_tokens=3 * MILLION,
                  cache_write_1h_tokens=MILLION)

    # reads 0.1 × $3, 5-minute writes 1.25 × $3 (two million), 1-hour writes 2 × $3
    assert PriceBook().cost(usage, local=False) == pytest.approx(0.30 + 2 * 3.75 + 6.0)


def test_long_prompts_use_the_higher_tier_for_the_whole_call() -> None:
    book = PriceBook()
    sonnet = Usage("claude-sonnet-4-5", input_tokens=150_000, cache_read_tokens=60_000, output_tokens=MILLION)
    assert book.cost(sonnet, local=False) == pytest.approx((150_000 * 6 + 60_000 * 0.6) / MILLION + 22.5)
    short = Usage("claude-haiku-5-5", input_tokens=100_000, output_tokens=MILLION)
    long = Usage("claude-haiku-5-5", input_tokens=100_001, output_tokens=MILLION)

    assert book.cost(short, local=False) == pytest.approx(0.01 + 0.50)
    assert book.cost(long, local=False) == pytest.approx(100_001 * 0.50 / MILLION + 2.50)


def test_anthropic_web_searches_are_billed_per_search() -> None:
    assert PriceBook().cost(Usage("claude-sonnet-4-6", web_search_requests=3), local=False) == pytest.approx(0.03)


def test_unknown_models_fall_back_as_documented(caplog: pytest.LogCaptureFixture) -> None:
    book = PriceBook()

    assert book.price("llama3.2:latest", local=True) is FREE
    assert book.price("claude-fable-5-2", local=False).input == 10
    assert book.price("claude-opus-9", local=False).input == 5
    assert book.price("mistral-large-latest", local=False) is FALLBACK
    assert book.price("mistral-large-latest", local=False) is FALLBACK
    assert caplog.text.count("no price for 'mistral-large-latest'") == 1
    assert book.price("gpt-4o", local=True).input == 2.5  # a local proxy in front of OpenAI still costs money
