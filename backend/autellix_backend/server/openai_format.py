"""OpenAI response bodies and server-sent-event chunks for chat and text completions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from autellix_backend.engines.base import EngineUsage, RequestKind


def usage_body(usage: EngineUsage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


def completion_body(
    kind: RequestKind,
    *,
    response_id: str,
    created: int,
    model: str,
    text: str,
    finish_reason: str | None,
    usage: EngineUsage | None,
) -> dict[str, Any]:
    """The whole (non-streamed) response."""
    choice: dict[str, Any]
    if kind is RequestKind.CHAT:
        message = {"role": "assistant", "content": text}
        choice = {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
        obj = "chat.completion"
    else:
        choice = {"index": 0, "text": text, "finish_reason": finish_reason, "logprobs": None}
        obj = "text_completion"
    return {
        "id": response_id,
        "object": obj,
        "created": created,
        "model": model,
        "choices": [choice],
        "usage": usage_body(usage),
    }


def chunk_event(
    kind: RequestKind,
    *,
    response_id: str,
    created: int,
    model: str,
    text: str | None,
    finish_reason: str | None,
    first: bool,
) -> bytes:
    """One ``data:`` event carrying a piece of output."""
    choice: dict[str, Any]
    if kind is RequestKind.CHAT:
        delta: dict[str, Any] = {"role": "assistant"} if first else {}
        if text:
            delta["content"] = text
        choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
        obj = "chat.completion.chunk"
    else:
        choice = {"index": 0, "text": text or "", "finish_reason": finish_reason, "logprobs": None}
        obj = "text_completion"
    body = {
        "id": response_id,
        "object": obj,
        "created": created,
        "model": model,
        "choices": [choice],
    }
    return sse(body)


def usage_event(
    kind: RequestKind, *, response_id: str, created: int, model: str, usage: EngineUsage
) -> bytes:
    """The final chunk of ``stream_options.include_usage``: no choices, only usage."""
    obj = "chat.completion.chunk" if kind is RequestKind.CHAT else "text_completion"
    body = {
        "id": response_id,
        "object": obj,
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage_body(usage),
    }
    return sse(body)


def relayed(event: Mapping[str, Any], *, response_id: str) -> dict[str, Any]:
    """An engine's own response or chunk as the gateway sends it on: under the call's id."""
    return {**event, "id": response_id}


def dumps(body: Any) -> bytes:
    """``body`` as compact UTF-8 JSON (orjson: several times faster than ``json.dumps`` on
    the per-call and per-chunk path)."""
    return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)


def sse(body: Mapping[str, Any]) -> bytes:
    return b"data: " + dumps(body) + b"\n\n"


DONE_EVENT = b"data: [DONE]\n\n"
