"""Tokens are per container start and revocable; headers lose the token and hop-by-hop fields on the way."""

from __future__ import annotations

import dataclasses

from nanoclaw_app.gateway.tokens import TokenRegistry, tokens_in
from nanoclaw_app.gateway.upstream import build_upstreams, is_local_host, request_headers, response_headers
from nanoclaw_app.settings import Settings


def test_each_grant_is_a_new_token_and_revoking_a_session_ends_all_of_its_tokens() -> None:
    registry = TokenRegistry()
    first = registry.grant("s1", "a1")
    second = registry.grant("s1", "a1")
    other = registry.grant("s2", "a1")

    assert len({first, second, other}) == 3
    assert first.startswith("ncgw-")
    assert len(first) > 40
    assert registry.lookup([first.encode()]) == registry.lookup([second.encode()])
    registry.revoke("s1")
    assert registry.lookup([first.encode()]) is None
    assert registry.lookup([second.encode()]) is None
    grant = registry.lookup([b"wrong", other.encode()])
    assert grant is not None
    assert grant.session_id == "s2"
    assert first not in repr(registry.__dict__)


def test_tokens_are_taken_from_x_api_key_and_bearer_authorization() -> None:
    headers = [(b"x-api-key", b" tok-a "), (b"authorization", b"Bearer tok-b"), (b"authorization", b"Basic xyz")]

    assert tokens_in(headers) == [b"tok-a", b"tok-b"]


def test_request_headers_drop_the_token_and_hop_by_hop_fields_and_add_the_key() -> None:
    incoming = [(b"host", b"gateway"), (b"x-api-key", b"ncgw-token"), (b"authorization", b"Bearer ncgw-token"),
                (b"connection", b"keep-alive, x-trace"), (b"x-trace", b"1"), (b"content-length", b"5"),
                (b"accept-encoding", b"gzip, br"), (b"anthropic-version", b"2023-06-01"), (b"cookie", b"a=b")]

    out = request_headers(incoming, (b"x-api-key", b"REAL"))

    assert out == [(b"anthropic-version", b"2023-06-01"), (b"accept-encoding", b"identity"), (b"x-api-key", b"REAL")]


def test_response_headers_keep_what_still_holds() -> None:
    raw = [(b"Content-Type", b"text/event-stream"), (b"Transfer-Encoding", b"chunked"), (b"Server", b"cloudflare"),
           (b"Date", b"today"), (b"Set-Cookie", b"__cf=1"), (b"request-id", b"req_1"), (b"Content-Length", b"9")]

    assert response_headers(raw) == [(b"content-type", b"text/event-stream"), (b"request-id", b"req_1"),
                                     (b"content-length", b"9")]


def test_upstreams_know_their_key_needs_and_whether_they_are_local(settings: Settings) -> None:
    default = build_upstreams(settings)
    ollama = build_upstreams(dataclasses.replace(
        settings, openai_base_url="http://localhost:11434/v1/", anthropic_base_url="https://u:p@proxy.example.com"))

    assert default["anthropic"].key_required
    assert default["openai"].key_required
    assert not default["anthropic"].local
    assert not default["openai"].local
    assert ollama["openai"].local
    assert not ollama["openai"].key_required
    assert ollama["openai"].base_url == "http://localhost:11434/v1"
    assert ollama["anthropic"].display == "https://proxy.example.com"  # credentials never reach logs or messages
    assert all(is_local_host(h) for h in ("127.0.0.1", "::1", "192.168.1.20", "10.0.0.5", "nas.local", "gpu-box"))
    assert not any(is_local_host(h) for h in ("api.openai.com", "openrouter.ai", "8.8.8.8"))
