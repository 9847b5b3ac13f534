"""The completion routes' plain ASGI path answers exactly what the declared FastAPI routes do.

Calls are served without FastAPI's request machinery; whatever that path does not accept is
replayed to the FastAPI route. Each request below goes to a service with the fast path and to
one without it (the same app, its fast routes removed), and the answers must be the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from autellix_backend.server.routes.completions import FastCompletionRoute
from autellix_graph.protocol import HEADER_PROGRAM_ID
from tests.server.conftest import LiveServer, sim_config

CHAT = b'{"model": "sim", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}'
JSON = {"content-type": "application/json"}


def _without_fast_routes(live: LiveServer) -> LiveServer:
    live.app.front = None
    routes = live.app.router.routes
    routes[:] = [
        r for r in routes if not isinstance(getattr(r, "endpoint", None), FastCompletionRoute)
    ]
    return live


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[LiveServer, LiveServer]]:
    keys = {"team": "sk-team"}
    fast = LiveServer(sim_config(api_keys=keys, time_scale=0.0)).start()
    declared = _without_fast_routes(LiveServer(sim_config(api_keys=keys, time_scale=0.0))).start()
    yield fast, declared
    fast.stop()
    declared.stop()


def _chunks() -> Iterator[bytes]:
    yield CHAT[:20]
    yield CHAT[20:]


AUTH = {"authorization": "Bearer sk-team"}

CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/v1/chat/completions", {"content": b'{"model": "sim"', "headers": JSON | AUTH}),
    (
        "POST",
        "/v1/chat/completions",
        {"content": CHAT, "headers": {"content-type": "text/plain"} | AUTH},
    ),
    ("POST", "/v1/chat/completions", {"content": CHAT, "headers": {"content-type": ""} | AUTH}),
    ("POST", "/v1/chat/completions", {"content": b"", "headers": JSON | AUTH}),
    ("POST", "/v1/chat/completions", {"content": b"[1, 2]", "headers": JSON | AUTH}),
    (
        "POST",
        "/v1/chat/completions",
        {"content": b'{"model": "sim", "messages": [], "x": NaN}', "headers": JSON | AUTH},
    ),
    ("POST", "/v1/chat/completions", {"content": CHAT, "headers": JSON}),
    (
        "POST",
        "/v1/chat/completions",
        {"content": CHAT, "headers": JSON | {"authorization": "Bearer no"}},
    ),
    ("POST", "/v1/chat/completions", {"content": b"{}", "headers": JSON}),
    (
        "POST",
        "/v1/chat/completions",
        {"content": CHAT, "headers": JSON | AUTH | {HEADER_PROGRAM_ID: "a b"}},
    ),
    (
        "POST",
        "/v1/completions",
        {"content": b'{"model": "sim", "prompt": 5}', "headers": JSON | AUTH},
    ),
    (
        "POST",
        "/v1/completions",
        {"content": b'{"model": "sim", "prompt": "x", "n": 0}', "headers": AUTH},
    ),
    ("POST", "/v1/chat/completions", {"content": CHAT, "headers": AUTH}),  # no content type
    ("GET", "/v1/chat/completions", {"headers": AUTH}),
    ("PUT", "/v1/completions", {"headers": AUTH}),
]


@pytest.mark.parametrize(("method", "path", "request_args"), CASES)
def test_a_refused_request_gets_the_declared_routes_answer(
    pair: tuple[LiveServer, LiveServer], method: str, path: str, request_args: dict[str, Any]
) -> None:
    fast, declared = pair
    answers = [
        httpx.request(method, f"{live.url}{path}", **request_args, timeout=30)
        for live in (fast, declared)
    ]
    assert answers[0].status_code >= 400
    assert answers[0].status_code == answers[1].status_code
    assert answers[0].content == answers[1].content
    assert answers[0].headers.get("content-type") == answers[1].headers.get("content-type")


@pytest.mark.parametrize(
    "request_args",
    [
        {"content": CHAT, "headers": JSON | AUTH},
        {"content": _chunks, "headers": {"content-type": "application/json; charset=utf-8"} | AUTH},
    ],
)
def test_a_valid_call_succeeds_on_both(
    pair: tuple[LiveServer, LiveServer], request_args: dict[str, Any]
) -> None:
    for live in pair:
        args = dict(request_args)
        if callable(args["content"]):
            args["content"] = args["content"]()
        r = httpx.post(f"{live.url}/v1/chat/completions", **args, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["object"] == "chat.completion"
        assert r.headers[HEADER_PROGRAM_ID]


def test_the_schema_lists_each_completion_route_once(pair: tuple[LiveServer, LiveServer]) -> None:
    schema = httpx.get(f"{pair[0].url}/openapi.json").json()
    for path in ("/v1/chat/completions", "/v1/completions"):
        post = schema["paths"][path]["post"]
        assert "requestBody" in post
    assert schema == httpx.get(f"{pair[1].url}/openapi.json").json()


def test_a_call_the_gateway_refuses_is_answered_and_counted_as_the_app_does(
    pair: tuple[LiveServer, LiveServer],
) -> None:
    """Valid JSON for a model nobody serves: the gateway's own error, raised past the point
    where the front has taken the call, is the app's answer, and counted once by status."""
    body = b'{"model": "nope", "messages": [{"role": "user", "content": "hi"}]}'
    answers = []
    for live in pair:
        before = live.metric("autellix_requests_total", route="/v1/chat/completions", status="404")
        r = httpx.post(f"{live.url}/v1/chat/completions", content=body, headers=JSON | AUTH)
        after = live.metric("autellix_requests_total", route="/v1/chat/completions", status="404")
        assert after - before == 1, r.text
        answers.append(r)
    assert answers[0].status_code == answers[1].status_code == 404
    assert answers[0].content == answers[1].content
    assert answers[0].json()["error"]["code"] == "model_not_found"
