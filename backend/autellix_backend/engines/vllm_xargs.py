"""The ``vllm_xargs`` a program-aware vLLM engine receives with a call.

One rule for the in-process and the remote vLLM adapters: the caller's own ``vllm_xargs``,
then a next-call hint for a chat call that offers tools, then the program tag, which wins.

A call that offers tools is a step of a tool loop (ReAct, ``bind_tools``): when it ends,
its program usually runs a tool and then sends the next call on the same prompt. The hint
lets the plugin's KV retention (``kv_retention: dag``) hold the call's blocks through the
tool; a caller that knows better sends its own ``autellix_next_tool``/``autellix_away_s``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autellix_backend.engines.base import ProgramTag
from autellix_protocol import KEY_AWAY_S, KEY_NEXT_TOOL, NextCallHint, encode_next_call

ANY_TOOL = "tool"
"""The hint's tool name when the call offers several tools and names none."""


def next_call_hint(body: Mapping[str, Any]) -> NextCallHint:
    """The hint a request body implies: a tool follows a call that offers tools, unless its
    ``tool_choice`` is ``"none"``. The tool is the one ``tool_choice`` names, the only one
    offered, or ``ANY_TOOL``."""
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if not isinstance(tools, list) or not tools or choice == "none":
        return NextCallHint()
    name = _function_name(choice) or (_function_name(tools[0]) if len(tools) == 1 else None)
    return NextCallHint(tool=name or ANY_TOOL)


def vllm_xargs(body: Mapping[str, Any], tag: ProgramTag) -> dict[str, Any]:
    """``body``'s own ``vllm_xargs`` with the next-call hint and the program ``tag`` added."""
    caller = dict(body.get("vllm_xargs") or {})
    knows = KEY_NEXT_TOOL in caller or KEY_AWAY_S in caller
    hint = {} if knows else encode_next_call(next_call_hint(body))
    return {**hint, **caller, **tag.as_xargs()}


def _function_name(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return None
    function = value.get("function")
    name = function.get("name") if isinstance(function, Mapping) else None
    return name if isinstance(name, str) and name else None
