"""The whole JSON API, as /schema documents it: fuzzed with a session (never a 5xx), refused without one (401).

Generic over whatever the schema lists, so every area's routes are covered as they are added. schemathesis sends
its requests with ``requests`` (blocking), so it runs in a worker thread while the host serves on the test's loop.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.core.result import Err
from schemathesis.generation import GenerationMode

from nanoclaw_app.host import Host
from nanoclaw_app.services.auth import COOKIE, issue_login_token

PUBLIC = {("POST", "/api/login"), ("GET", "/health")}
STREAMS = {"/api/events"}  # never ends: checked on its own below
SIGNS_OUT = {("POST", "/api/logout")}  # ends the fuzzing session on purpose; covered by the auth tests
EXAMPLES = {GenerationMode.POSITIVE: 6, GenerationMode.NEGATIVE: 3}
METHODS = ("get", "post", "put", "patch", "delete")


async def _openapi(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/schema/openapi.json")
    assert response.status_code == 200, response.text
    schema: dict[str, Any] = response.json()
    return schema


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path, operation) for every documented operation."""
    return [
        (method.upper(), path, operation)
        for path, item in schema.get("paths", {}).items()
        for method, operation in item.items()
        if method in METHODS
    ]


def _fill_path(path: str, operation: dict[str, Any]) -> str:
    """A concrete URL for a templated path: any value will do, since the request must be refused before lookup."""
    params = operation.get("parameters", [])
    kinds = {p["name"]: p.get("schema", {}).get("type") for p in params if p.get("in") == "path"}
    return re.sub(r"\{([^}:]+)(?::[^}]*)?\}", lambda m: "1" if kinds.get(m.group(1)) == "integer" else "x", path)


class _Fuzzer:
    """Sends generated requests with a session and collects every 5xx answer."""

    def __init__(self, base_url: str, cookies: dict[str, str], csrf: str,
                 relogin: Callable[[], dict[str, str]]) -> None:
        self.base_url = base_url
        self.relogin = relogin
        self.session = requests.Session()
        self.session.cookies.update(cookies)
        self.session.headers["x-csrftoken"] = csrf
        self.errors: list[str] = []
        self.calls = 0

    def run(self, schema_dict: dict[str, Any]) -> None:
        """Every operation with generated inputs, valid and invalid."""
        for result in schemathesis.openapi.from_dict(schema_dict).get_all_operations():
            if isinstance(result, Err):
                self.errors.append(f"the schema documents an operation it cannot describe: {result.err()}")
                continue
            operation = result.ok()
            if operation.path in STREAMS or (operation.method.upper(), operation.path) in SIGNS_OUT:
                continue
            for mode, examples in EXAMPLES.items():
                self.fuzz(operation, mode, examples)

    def fuzz(self, operation: Any, mode: GenerationMode, examples: int) -> None:
        @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate])
        @given(case=operation.as_strategy(generation_mode=mode))
        def call(case: Any) -> None:
            self.calls += 1
            response = case.call(base_url=self.base_url, session=self.session, timeout=30)
            if response.status_code == 401:  # something the fuzzer sent signed everyone out: sign in again
                self.session.cookies.update(self.relogin())
                response = case.call(base_url=self.base_url, session=self.session, timeout=30)
            if response.status_code >= 500:
                self.errors.append(
                    f"{response.status_code} {case.method} {case.formatted_path} ({mode.value}) "
                    f"query={case.query} body={case.body!r:.300}: {response.text[:300]}"
                )

        try:
            call()
        except Unsatisfiable:  # nothing invalid can be sent to an operation without inputs
            assert mode is GenerationMode.NEGATIVE, f"no valid input for {operation.method} {operation.path}"


async def test_no_operation_answers_5xx_to_generated_input(web_host: Host, client: httpx.AsyncClient,
                                                            base_url: str) -> None:
    schema = await _openapi(client)
    loop = asyncio.get_running_loop()

    def relogin() -> dict[str, str]:
        token = asyncio.run_coroutine_threadsafe(issue_login_token(web_host.db), loop).result(30)
        response = requests.get(f"{base_url}/login", params={"token": token}, allow_redirects=False, timeout=30)
        cookie = response.cookies.get(COOKIE)
        assert cookie is not None, f"the login link did not sign in again: {response.status_code}"
        return {COOKIE: cookie}

    cookie = client.cookies.get(COOKIE)
    assert cookie is not None
    fuzzer = _Fuzzer(base_url, {COOKIE: cookie}, client.headers["x-csrftoken"], relogin)
    await asyncio.to_thread(fuzzer.run, schema)
    assert fuzzer.calls > 0
    assert not fuzzer.errors, "server errors:\n" + "\n".join(fuzzer.errors)


async def test_the_event_stream_opens_with_hello(client: httpx.AsyncClient) -> None:
    fields: dict[str, str] = {}
    async with asyncio.timeout(30), client.stream("GET", "/api/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if not line:  # the blank line that ends the first event
                break
            name, _, value = line.partition(": ")
            fields[name] = value
    assert fields["event"] == "hello"
    assert json.loads(fields["data"])["components"]["web"].startswith("http://")


async def test_without_a_session_every_operation_but_login_and_health_is_refused(
    client: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    schema = await _openapi(client)
    await anon.get("/health")  # a CSRF cookie is free to anyone: only the missing session may be the reason
    anon.headers["x-csrftoken"] = anon.cookies["nanoclaw_csrf"]
    operations = _operations(schema)
    assert {(m, p) for m, p, _ in operations} >= PUBLIC | {("GET", "/api/events")}
    answered: dict[str, int] = {}
    for method, path, operation in operations:
        if (method, path) in PUBLIC:
            continue
        response = await anon.request(method, _fill_path(path, operation),
                                      json={} if method in ("POST", "PUT", "PATCH") else None)
        answered[f"{method} {path}"] = response.status_code
    not_refused = {op: code for op, code in answered.items() if code != 401}
    assert not not_refused, f"answered without a session: {not_refused}"
    assert (await anon.get("/schema/openapi.json")).status_code == 401


@pytest.mark.parametrize(("method", "path"), sorted(PUBLIC))
async def test_login_and_health_answer_without_a_session(anon: httpx.AsyncClient, method: str, path: str) -> None:
    await anon.get("/health")
    response = await anon.request(method, path, json={"password": "not the password"} if method == "POST" else None,
                                  headers={"x-csrftoken": anon.cookies["nanoclaw_csrf"]})
    if method == "POST":  # a wrong password is refused by the login itself, not for want of a session
        assert response.json() == {"ok": False}
    else:
        assert response.status_code == 200
        assert response.json()["status"] == "ok"
