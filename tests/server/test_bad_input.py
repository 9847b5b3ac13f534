"""Bad requests get a clear 4xx in the OpenAI error shape and change nothing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from autellix_graph.protocol import HEADER_PARENT_IDS, HEADER_PROGRAM_ID
from tests.server.conftest import LiveServer

CHAT = {"model": "sim", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def _table(client: httpx.Client) -> dict[str, tuple[Any, ...]]:
    """What a bad request must not change: each program's calls and service (not its idle
    time, which grows while other tests share the server)."""
    data: list[dict[str, Any]] = client.get("/v1/programs").json()["data"]
    return {p["program_id"]: (p["num_calls"], p["service"], p["state"]) for p in data}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({**CHAT, "model": "gpt-17"}, 404, "model_not_found"),
        ({**CHAT, "max_tokens": -1}, 400, "invalid_value"),
        ({**CHAT, "max_tokens": 10**9}, 400, "invalid_value"),
        ({**CHAT, "messages": []}, 400, "invalid_value"),
        ({**CHAT, "messages": [{"role": "robot", "content": "x"}]}, 400, "invalid_value"),
        ({**CHAT, "n": 2}, 400, "invalid_value"),
        ({"messages": CHAT["messages"]}, 400, "invalid_value"),
        (
            {**CHAT, "messages": [{"role": "user", "content": "x" * 200_000}]},
            400,
            "context_length_exceeded",
        ),
    ],
)
def test_invalid_chat_requests_get_4xx_and_leave_the_table_alone(
    server: LiveServer, body: dict[str, Any], status: int, code: str
) -> None:
    with server.client() as client:
        before = _table(client)
        r = client.post("/v1/chat/completions", json=body, headers={HEADER_PROGRAM_ID: "bad-1"})
        assert r.status_code == status, r.text
        error = r.json()["error"]
        assert error["code"] == code and error["message"]
        assert _table(client) == before
        assert client.get("/v1/programs/bad-1").status_code == 404


@pytest.mark.parametrize("prompt", [[], [[]], [[], [1]]])
def test_an_empty_completion_prompt_is_400_and_leaves_the_table_alone(
    server: LiveServer, prompt: object
) -> None:
    body = {"model": "sim", "prompt": prompt, "max_tokens": 2}
    with server.client() as client:
        before = _table(client)
        r = client.post("/v1/completions", json=body, headers={HEADER_PROGRAM_ID: "bad-2"})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["code"] == "invalid_value"
        assert _table(client) == before
        assert client.get("/v1/programs/bad-2").status_code == 404


def test_malformed_json_is_400(server: LiveServer) -> None:
    r = httpx.post(
        f"{server.url}/v1/chat/completions",
        content=b'{"model": "sim", "messages": [',
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_json"


def test_oversized_body_is_413(serve: Any) -> None:
    from autellix_backend.server import Limits
    from tests.server.conftest import sim_config

    live = serve(sim_config(limits=Limits(max_body_bytes=1024)))
    big = {**CHAT, "messages": [{"role": "user", "content": "x" * 5000}]}
    r = httpx.post(f"{live.url}/v1/chat/completions", json=big)
    assert r.status_code == 413

    def chunks() -> Any:
        yield b'{"model": "sim", "prompt": "'
        for _ in range(10):
            yield b"y" * 500
        yield b'"}'

    streamed = httpx.post(
        f"{live.url}/v1/completions", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413


@pytest.mark.parametrize(
    "headers",
    [
        {HEADER_PROGRAM_ID: "has space"},
        {HEADER_PROGRAM_ID: "x" * 300},
        {HEADER_PROGRAM_ID: "p", HEADER_PARENT_IDS: ",".join(f"c{i}" for i in range(300))},
        {HEADER_PROGRAM_ID: "p", "X-Autellix-Call-Id": "c1", HEADER_PARENT_IDS: "c1"},
    ],
)
def test_malformed_tag_headers_are_400(server: LiveServer, headers: dict[str, str]) -> None:
    r = httpx.post(f"{server.url}/v1/chat/completions", json=CHAT, headers=headers)
    assert r.status_code == 400, r.text


def test_unknown_program_is_404(server: LiveServer) -> None:
    with server.client() as client:
        assert client.get("/v1/programs/nope").status_code == 404
        r = client.delete("/v1/programs/nope")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "program_not_found"


def test_call_id_in_flight_twice_is_409(server: LiveServer) -> None:
    headers = {HEADER_PROGRAM_ID: "dup", "X-Autellix-Call-Id": "same"}
    long = {**CHAT, "max_tokens": 200, "stream": True}
    with (
        httpx.Client(base_url=server.url, timeout=30) as client,
        client.stream("POST", "/v1/chat/completions", json=long, headers=headers) as first,
    ):
        assert first.status_code == 200
        second = client.post("/v1/chat/completions", json=CHAT, headers=headers)
        assert second.status_code == 409
