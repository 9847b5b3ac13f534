"""The simulated engine refuses what filler text cannot honour, with a 400 naming the field,
before the call is admitted; neutral values of those fields and every prompt form work.

(The same fields on the in-process vLLM engine: tests/engine/test_openai_parity.py.)
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from autellix_graph.protocol import HEADER_PROGRAM_ID
from tests.server.conftest import LiveServer

MESSAGES = [{"role": "user", "content": "hi"}]
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


def _programs(client: httpx.Client) -> list[str]:
    return sorted(p["program_id"] for p in client.get("/v1/programs").json()["data"])


@pytest.mark.parametrize(
    ("path", "fields", "param"),
    [
        ("/v1/chat/completions", {"tools": [TOOL], "tool_choice": "auto"}, "tools"),
        ("/v1/chat/completions", {"tool_choice": "required"}, "tool_choice"),
        ("/v1/chat/completions", {"response_format": {"type": "json_object"}}, "response_format"),
        ("/v1/chat/completions", {"logprobs": True, "top_logprobs": 2}, "logprobs"),
        ("/v1/chat/completions", {"n": 2}, "n"),
        ("/v1/completions", {"logprobs": 3}, "logprobs"),
        ("/v1/completions", {"echo": True}, "echo"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_the_simulator_refuses_what_it_cannot_honour(
    server: LiveServer, path: str, fields: dict[str, Any], param: str, stream: bool
) -> None:
    prompt = {"messages": MESSAGES} if "chat" in path else {"prompt": "hi"}
    body = {"model": "sim", "max_tokens": 2, "stream": stream, **prompt, **fields}
    with server.client() as client:
        before = _programs(client)
        response = client.post(path, json=body, headers={HEADER_PROGRAM_ID: "refused-1"})
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["param"] == param and param in error["message"]
        assert _programs(client) == before


@pytest.mark.parametrize(
    "fields",
    [
        {"tools": [TOOL], "tool_choice": "none"},
        {"response_format": {"type": "text"}},
        {"logprobs": False, "n": 1, "seed": 3, "stop": ["x"], "temperature": 0.0},
    ],
)
def test_neutral_values_are_served(server: LiveServer, fields: dict[str, Any]) -> None:
    body = {"model": "sim", "max_tokens": 2, "messages": MESSAGES, **fields}
    with server.client() as client:
        response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["usage"]["completion_tokens"] == 2


@pytest.mark.parametrize(
    "prompt", ["text", ["one", "two"], [11, 42, 7], [[11, 42], [7, 300, 9]]], ids=str
)
def test_every_prompt_form_is_accepted(server: LiveServer, prompt: Any) -> None:
    body = {"model": "sim", "max_tokens": 2, "prompt": prompt}
    with server.client() as client:
        response = client.post("/v1/completions", json=body)
    assert response.status_code == 200, response.text
