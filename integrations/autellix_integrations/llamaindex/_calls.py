"""LlamaIndex LLM start/end events read as the neutral call descriptions of
``autellix_graph._attributes`` (the twin of ``autellix_graph._langchain_calls``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llama_index.core.instrumentation.events import BaseEvent

from autellix_graph._attributes import LlmRequest, LlmResponse, Message


def llm_request(event: BaseEvent) -> LlmRequest:
    """Describe a call from its ``LLMChatStartEvent`` / ``LLMCompletionStartEvent``."""
    model_dict: Mapping[str, Any] = getattr(event, "model_dict", None) or {}
    class_name = str(model_dict.get("class_name") or "llm")
    model = model_dict.get("model") or model_dict.get("model_name") or class_name
    messages = getattr(event, "messages", None)
    if messages is not None:
        described = tuple(_message(m) for m in messages)
    else:
        described = (Message("user", str(getattr(event, "prompt", "") or "")),)
    parameters = {**model_dict, **(getattr(event, "additional_kwargs", None) or {})}
    provider = "openai" if "openai" in class_name.lower() else class_name.lower()
    return LlmRequest(
        model=str(model),
        provider=provider,
        invocation_parameters=parameters,
        messages=described,
    )


def llm_response(event: BaseEvent) -> LlmResponse | None:
    """Usage and reply from an end event (usage from the OpenAI-shaped ``raw`` response)."""
    response = getattr(event, "response", None)
    if response is None:
        return None
    raw = getattr(response, "raw", None)
    usage = _get(raw, "usage")
    message = getattr(response, "message", None)
    text = _message(message) if message is not None else Message("assistant", response.text)
    model = _get(raw, "model")
    return LlmResponse(
        input_tokens=_int(_get(usage, "prompt_tokens")),
        output_tokens=_int(_get(usage, "completion_tokens")),
        total_tokens=_int(_get(usage, "total_tokens")),
        response_model=str(model) if model else None,
        messages=(text,),
    )


def _message(message: Any) -> Message:
    role = getattr(message, "role", "user")
    return Message(str(getattr(role, "value", role)), str(getattr(message, "content", "") or ""))


def _get(value: Any, name: str) -> Any:
    if value is None:
        return None
    if isinstance(value, Mapping):
        return value.get(name)
    return getattr(value, name, None)


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
