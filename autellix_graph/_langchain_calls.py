"""LangChain callback arguments read as the neutral call descriptions of ``_attributes``.

``session_id`` (re-exported) reads the conversation from run metadata, where LangGraph copies
``configurable.thread_id``.

Model and provider fall back from what LangChain reports (``ls_model_name``, ``ls_provider``)
to the invocation parameters and then to the client's class name, so a span is never a bare
``chat``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from autellix_graph._attributes import (
    LlmRequest,
    LlmResponse,
    Message,
    ToolCall,
    to_json,
)
from autellix_graph._attributes import session_id as session_id

if TYPE_CHECKING:
    from langchain_core.outputs import LLMResult

_MODEL_PARAMETERS: Final = ("model", "model_name", "model_id", "deployment_name", "model_path")
_ROLES: Final = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool"}


def llm_request(
    serialized: Mapping[str, Any] | None,
    metadata: Mapping[str, Any] | None,
    invocation_params: Mapping[str, Any] | None,
    messages: Sequence[Message] = (),
) -> LlmRequest:
    """Describe a chat-model or LLM call from its ``on_*_start`` arguments."""
    meta = metadata or {}
    params = invocation_params or {}
    class_name = _class_name(serialized)
    model = meta.get("ls_model_name") or next(
        (params[k] for k in _MODEL_PARAMETERS if isinstance(params.get(k), str) and params[k]),
        None,
    )
    provider = meta.get("ls_provider") or params.get("_type") or class_name
    return LlmRequest(
        model=str(model or class_name or "llm"),
        provider=str(provider).lower() if provider else None,
        invocation_parameters=params,
        messages=messages,
    )


def chat_messages(batches: Any) -> tuple[Message, ...]:
    """The first prompt of ``on_chat_model_start``'s ``messages`` (a list of message lists)."""
    if not batches or not isinstance(batches, Sequence):
        return ()
    return tuple(message(m) for m in batches[0])


def prompt_messages(prompts: Sequence[str]) -> tuple[Message, ...]:
    """``on_llm_start``'s string prompts as user messages."""
    return tuple(Message("user", p) for p in prompts[:1])


def message(value: Any) -> Message:
    """A LangChain ``BaseMessage`` (or anything with ``type`` and ``content``) as a message."""
    kind = str(getattr(value, "type", "") or "")
    role = _ROLES.get(kind) or str(getattr(value, "role", "") or kind or "user")
    calls = tuple(
        ToolCall(str(c.get("name", "")), to_json(c.get("args", {})), c.get("id"))
        for c in getattr(value, "tool_calls", None) or ()
        if isinstance(c, Mapping)
    )
    return Message(role, _text(getattr(value, "content", value)), calls)


def llm_response(response: LLMResult, *, messages: bool = True) -> LlmResponse:
    """Usage, response model, finish reasons and reply of a LangChain result. Usage comes
    from the provider's ``usage`` (``llm_output.token_usage``, what Autellix measured when the
    call went through it) or else from the message's ``usage_metadata``. The reply is read
    only with ``messages`` (content goes on spans only when captured)."""
    output = response.llm_output or {}
    generations = [g for batch in response.generations[:1] for g in batch]
    usage = output.get("token_usage") or output.get("usage") or {}
    input_tokens = _int(usage.get("prompt_tokens", usage.get("input_tokens")))
    output_tokens = _int(usage.get("completion_tokens", usage.get("output_tokens")))
    total_tokens = _int(usage.get("total_tokens"))
    replies: list[Message] = []
    reasons: list[str] = []
    for generation in generations:
        chat_message = getattr(generation, "message", None)
        if messages:
            replies.append(
                message(chat_message)
                if chat_message is not None
                else Message("assistant", generation.text)
            )
        info = generation.generation_info or {}
        reason = info.get("finish_reason")
        if reason:
            reasons.append(str(reason))
        metadata = getattr(chat_message, "usage_metadata", None)
        if metadata and input_tokens is None and output_tokens is None:
            input_tokens = _int(metadata.get("input_tokens"))
            output_tokens = _int(metadata.get("output_tokens"))
            total_tokens = _int(metadata.get("total_tokens"))
    model = output.get("model_name") or output.get("model")
    return LlmResponse(
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        total_tokens=total_tokens,
        response_model=str(model) if model else None,
        finish_reasons=tuple(reasons),
        messages=tuple(replies),
    )


def _class_name(serialized: Mapping[str, Any] | None) -> str | None:
    if not serialized:
        return None
    ident = serialized.get("id")
    if isinstance(ident, list) and ident:
        return str(ident[-1])
    name = serialized.get("name")
    return str(name) if name else None


def _text(content: Any) -> str:
    """Message content as text: strings as is, the text parts of a part list, else JSON."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            part if isinstance(part, str) else str(part.get("text", ""))
            for part in content
            if isinstance(part, str) or (isinstance(part, Mapping) and "text" in part)
        ]
        if texts:
            return "".join(texts)
    try:
        return json.dumps(content, default=str, ensure_ascii=False)
    except ValueError:
        return str(content)


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
