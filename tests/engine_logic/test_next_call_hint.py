"""Which calls tell a vLLM engine that their program's next call follows a tool.

A chat call that offers tools is a tool-loop step: the engine may hold its KV through the
tool (``kv_retention: dag``). The hint rides in ``vllm_xargs``, as the plugin decodes it.
"""

from __future__ import annotations

from typing import Any

import pytest

from autellix_backend.engines.base import EngineRequest, ProgramTag, RequestKind
from autellix_backend.engines.remote_vllm import RemoteVLLMEngine
from autellix_backend.engines.vllm_xargs import ANY_TOOL
from autellix_protocol import NextCallHint, decode_next_call, decode_xargs

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
SEARCH = {"type": "function", "function": {"name": "search", "parameters": {}}}
MESSAGES = [{"role": "user", "content": "hi"}]


def _sent(body: dict[str, Any]) -> dict[str, Any]:
    """The ``vllm_xargs`` a remote vLLM server receives for ``body``."""
    engine = RemoteVLLMEngine(engine_id="r", base_url="http://127.0.0.1:9")
    tag = ProgramTag(program_id="p", call_id="c1")
    request = EngineRequest(request_id="c1", kind=RequestKind.CHAT, body=body, tag=tag)
    xargs: dict[str, Any] = engine.decorate(dict(body), request)["vllm_xargs"]
    return xargs


@pytest.mark.parametrize(
    ("extra", "hint"),
    [
        ({}, NextCallHint()),
        ({"tools": []}, NextCallHint()),
        ({"tools": [WEATHER]}, NextCallHint(tool="get_weather")),
        ({"tools": [WEATHER], "tool_choice": "auto"}, NextCallHint(tool="get_weather")),
        ({"tools": [WEATHER, SEARCH]}, NextCallHint(tool=ANY_TOOL)),
        ({"tools": [WEATHER, SEARCH], "tool_choice": SEARCH}, NextCallHint(tool="search")),
        ({"tools": [WEATHER], "tool_choice": "none"}, NextCallHint()),
    ],
)
def test_a_call_offering_tools_says_a_tool_follows(
    extra: dict[str, Any], hint: NextCallHint
) -> None:
    xargs = _sent({"messages": MESSAGES, **extra})
    assert decode_next_call(xargs) == hint
    assert decode_xargs(xargs, request_id="c1").program_id == "p"


def test_the_callers_own_hint_and_xargs_win_and_the_tag_is_kept() -> None:
    body = {
        "messages": MESSAGES,
        "tools": [WEATHER],
        "vllm_xargs": {"autellix_away_s": "2.5", "mine": "x"},
    }
    xargs = _sent(body)
    assert decode_next_call(xargs) == NextCallHint(away_s=2.5)
    assert xargs["mine"] == "x"
    spoofed = _sent({"messages": MESSAGES, "vllm_xargs": {"autellix_program_id": "other"}})
    assert decode_xargs(spoofed, request_id="c1").program_id == "p"
