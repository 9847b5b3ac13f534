"""What each span says: ``autellix.*`` attributes next to OpenInference and OpenTelemetry GenAI
names, so Phoenix, Jaeger, Langfuse or any OTLP tool shows programs, sessions, models, tokens
and (only when the user opts in) prompts and completions.

Framework-neutral: front ends describe a call with :class:`LlmRequest` / :class:`LlmResponse`
and :class:`Message`; the functions here turn those into attribute dicts. No I/O.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from autellix_graph import protocol
from autellix_graph._dag import ROOT_THREAD_ID, DagNode, NodeKind, ThreadInfo

Attributes = dict[str, AttributeValue]

# OpenInference names (https://github.com/Arize-ai/openinference, semantic conventions).
GRAPH_NODE_NAME: Final = "graph.node.name"
INPUT_VALUE: Final = "input.value"
INPUT_MIME_TYPE: Final = "input.mime_type"
OUTPUT_VALUE: Final = "output.value"
OUTPUT_MIME_TYPE: Final = "output.mime_type"
LLM_MODEL_NAME: Final = "llm.model_name"
LLM_PROVIDER: Final = "llm.provider"
LLM_SYSTEM: Final = "llm.system"
LLM_INVOCATION_PARAMETERS: Final = "llm.invocation_parameters"
LLM_INPUT_MESSAGES: Final = "llm.input_messages"
LLM_OUTPUT_MESSAGES: Final = "llm.output_messages"
LLM_TOKEN_COUNT_PROMPT: Final = "llm.token_count.prompt"
LLM_TOKEN_COUNT_COMPLETION: Final = "llm.token_count.completion"
LLM_TOKEN_COUNT_TOTAL: Final = "llm.token_count.total"
TOOL_NAME: Final = "tool.name"
# OpenTelemetry GenAI names (semantic conventions 1.37+).
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_TOOL_CALL_ARGUMENTS: Final = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT: Final = "gen_ai.tool.call.result"

MAX_CONTENT_CHARS: Final = 32_768
"""Longest captured content value; longer ones are cut and end with ``...``."""
MAX_INPUT_MESSAGE_ATTRIBUTES: Final = 64
MAX_OUTPUT_MESSAGE_ATTRIBUTES: Final = 24
"""Budgets for the flattened ``llm.*_messages.*`` attributes. The SDK keeps 128 attributes a
span by default and evicts the *oldest* beyond that (our ids); a long history is flattened
from its most recent messages (the JSON forms keep all of it)."""
_JSON = "application/json"
_TEXT = "text/plain"

_OPENINFERENCE_KIND = {
    protocol.SPAN_KIND_PROGRAM: "AGENT",
    protocol.SPAN_KIND_NODE: "CHAIN",
    protocol.SPAN_KIND_LLM: "LLM",
    protocol.SPAN_KIND_TOOL: "TOOL",
    protocol.SPAN_KIND_INTERRUPT: "CHAIN",
}
_GEN_AI_OPERATION = {
    protocol.SPAN_KIND_PROGRAM: "invoke_agent",
    protocol.SPAN_KIND_LLM: "chat",
    protocol.SPAN_KIND_TOOL: "execute_tool",
}
_SECRET_WORDS = frozenset(
    {"key", "apikey", "token", "secret", "password", "passwd", "auth", "authorization"}
    | {"credential", "credentials", "cookie", "cookies", "header", "headers", "signature"}
)
_SAFE_PARAMETERS = frozenset(
    {"model", "model_name", "model_id", "temperature", "top_p", "top_k", "min_p", "seed", "n"}
    | {"max_tokens", "max_completion_tokens", "max_new_tokens", "stream", "stop", "timeout"}
    | {"presence_penalty", "frequency_penalty", "repetition_penalty", "logprobs", "top_logprobs"}
    | {"tool_choice", "parallel_tool_calls", "max_retries", "reasoning_effort", "service_tier"}
)
"""Invocation parameters recorded when content is not captured: sampling settings only (other
parameters may hold content, e.g. tool schemas or a test model's canned replies)."""
_NODE_SPAN_KIND = {
    NodeKind.LLM: protocol.SPAN_KIND_LLM,
    NodeKind.TOOL: protocol.SPAN_KIND_TOOL,
    NodeKind.INTERRUPT: protocol.SPAN_KIND_INTERRUPT,
}
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool call an LLM asked for."""

    name: str
    arguments: str
    """JSON text, as the model wrote it."""
    call_id: str | None = None


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message, in OpenAI roles (``system``, ``user``, ``assistant``, ``tool``)."""

    role: str
    content: str
    tool_calls: tuple[ToolCall, ...] = ()


@dataclass(frozen=True, slots=True)
class LlmRequest:
    """What a front end knows when an LLM call starts."""

    model: str
    """Model name; the front end falls back to the client's class name."""
    provider: str | None = None
    """Who serves the model (``openai``, ``anthropic``...), lower case."""
    invocation_parameters: Mapping[str, Any] = field(default_factory=dict)
    """Sampling and client parameters; secrets are removed before they reach a span."""
    messages: Sequence[Message] = ()


@dataclass(frozen=True, slots=True)
class LlmResponse:
    """What a front end knows when an LLM call ends (the service's ``usage`` when the call
    went through Autellix)."""

    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    response_model: str | None = None
    finish_reasons: tuple[str, ...] = ()
    messages: Sequence[Message] = ()


# Spans of the program, its threads and its nodes ------------------------------------------


SESSION_KEYS: Final = ("session_id", "conversation_id", "thread_id")
"""Keys that name the conversation a run belongs to, first found wins: run metadata for
LangChain (LangGraph copies ``configurable.thread_id`` there), start-event fields for
LlamaIndex (``workflow.run(session_id=...)``)."""


def session_id(fields: Mapping[str, Any] | None) -> str | None:
    """The conversation named in ``fields``; None when they name none (then the program is
    its own session)."""
    for key in SESSION_KEYS:
        value = (fields or {}).get(key)
        if value is not None and str(value):
            return str(value)
    return None


def common_attributes(kind: str, program_id: str, session_id: str | None = None) -> Attributes:
    """Attributes every span carries. ``session_id`` is the conversation the program belongs
    to (a LangGraph ``thread_id``, a ``session_id``); a program with none is its own session."""
    session = session_id or program_id
    attributes: Attributes = {
        protocol.ATTR_SPAN_KIND: kind,
        protocol.ATTR_PROGRAM_ID: program_id,
        protocol.OPENINFERENCE_SESSION_ID: session,
        protocol.OPENINFERENCE_SPAN_KIND: _OPENINFERENCE_KIND[kind],
        protocol.GEN_AI_CONVERSATION_ID: session,
    }
    operation = _GEN_AI_OPERATION.get(kind)
    if operation is not None:
        attributes[protocol.GEN_AI_OPERATION_NAME] = operation
    return attributes


def program_attributes(
    program_id: str, graph_name: str, session_id: str | None = None
) -> Attributes:
    """The program (root) span: the root of the OpenInference graph, with no parent."""
    attributes = common_attributes(protocol.SPAN_KIND_PROGRAM, program_id, session_id)
    attributes.update(
        {
            protocol.ATTR_NODE_NAME: graph_name,
            protocol.OPENINFERENCE_GRAPH_NODE_ID: ROOT_THREAD_ID,
            GRAPH_NODE_NAME: graph_name,
        }
    )
    return attributes


def thread_attributes(
    program_id: str, thread: ThreadInfo, session_id: str | None = None
) -> Attributes:
    """A thread (task) span; its graph parent is the enclosing thread or the program."""
    attributes = common_attributes(protocol.SPAN_KIND_NODE, program_id, session_id)
    attributes.update(
        {
            protocol.ATTR_THREAD_ID: thread.thread_id,
            protocol.ATTR_PARENT_THREAD_ID: thread.parent_thread_id,
            protocol.ATTR_NODE_ID: thread.thread_id,
            protocol.ATTR_NODE_NAME: thread.node_name,
            protocol.ATTR_SUPERSTEP: thread.superstep,
            protocol.OPENINFERENCE_GRAPH_NODE_ID: thread.thread_id,
            protocol.OPENINFERENCE_GRAPH_NODE_PARENT_ID: thread.parent_thread_id,
            GRAPH_NODE_NAME: thread.node_name,
        }
    )
    return attributes


def node_attributes(
    program_id: str, node: DagNode, name: str | None, session_id: str | None = None
) -> Attributes:
    """An LLM-call, tool or interrupt span; ``name`` is the model or the tool."""
    kind = _NODE_SPAN_KIND[node.kind]
    attributes = common_attributes(kind, program_id, session_id)
    attributes.update(
        {
            protocol.ATTR_THREAD_ID: node.thread_id,
            protocol.ATTR_NODE_ID: node.node_id,
            protocol.ATTR_PARENT_IDS: node.parent_ids,
            protocol.OPENINFERENCE_GRAPH_NODE_ID: node.node_id,
            protocol.OPENINFERENCE_GRAPH_NODE_PARENT_ID: node.thread_id,
            GRAPH_NODE_NAME: name or kind,
        }
    )
    if node.kind is NodeKind.LLM:
        attributes[protocol.ATTR_CALL_ID] = node.node_id
        attributes[protocol.ATTR_LLM_PARENT_IDS] = node.llm_parent_ids
    if name:
        attributes[protocol.ATTR_NODE_NAME] = name
        if node.kind is NodeKind.LLM:
            attributes[protocol.GEN_AI_REQUEST_MODEL] = name
            attributes[LLM_MODEL_NAME] = name
        elif node.kind is NodeKind.TOOL:
            attributes[protocol.GEN_AI_TOOL_NAME] = name
            attributes[TOOL_NAME] = name
    return attributes


# LLM calls --------------------------------------------------------------------------------


def llm_span_name(request: LlmRequest) -> str:
    """``chat <model>``, the GenAI convention's span name."""
    return f"chat {request.model}"


def llm_request_attributes(request: LlmRequest, *, capture_content: bool) -> Attributes:
    """Model, provider and parameters of a call; its messages only with ``capture_content``."""
    attributes: Attributes = {
        protocol.GEN_AI_REQUEST_MODEL: request.model,
        LLM_MODEL_NAME: request.model,
        LLM_INVOCATION_PARAMETERS: to_json(
            invocation_parameters(request.invocation_parameters, capture_content=capture_content)
        ),
    }
    if request.provider:
        attributes[GEN_AI_PROVIDER_NAME] = request.provider
        attributes[LLM_PROVIDER] = request.provider
        attributes[LLM_SYSTEM] = request.provider
    if capture_content and request.messages:
        attributes.update(
            _messages(LLM_INPUT_MESSAGES, request.messages, MAX_INPUT_MESSAGE_ATTRIBUTES)
        )
        attributes[GEN_AI_INPUT_MESSAGES] = _clip(to_json(_gen_ai_messages(request.messages)))
        attributes.update(content_attributes(INPUT_VALUE, _openai_messages(request.messages)))
    return attributes


def llm_response_attributes(response: LlmResponse, *, capture_content: bool) -> Attributes:
    """Token usage, response model and finish reasons; the reply only with ``capture_content``."""
    attributes: Attributes = {}
    total = response.total_tokens
    if total is None and response.input_tokens is not None and response.output_tokens is not None:
        total = response.input_tokens + response.output_tokens
    for names, value in (
        ((protocol.GEN_AI_USAGE_INPUT_TOKENS, LLM_TOKEN_COUNT_PROMPT), response.input_tokens),
        ((protocol.GEN_AI_USAGE_OUTPUT_TOKENS, LLM_TOKEN_COUNT_COMPLETION), response.output_tokens),
        ((LLM_TOKEN_COUNT_TOTAL,), total),
    ):
        if value is not None:
            attributes.update(dict.fromkeys(names, int(value)))
    if response.response_model:
        attributes[GEN_AI_RESPONSE_MODEL] = response.response_model
    if response.finish_reasons:
        attributes[GEN_AI_RESPONSE_FINISH_REASONS] = list(response.finish_reasons)
    if capture_content and response.messages:
        attributes.update(
            _messages(LLM_OUTPUT_MESSAGES, response.messages, MAX_OUTPUT_MESSAGE_ATTRIBUTES)
        )
        attributes[GEN_AI_OUTPUT_MESSAGES] = _clip(to_json(_gen_ai_messages(response.messages)))
        text = "\n".join(m.content for m in response.messages if m.content)
        if text:
            attributes.update(content_attributes(OUTPUT_VALUE, text))
    return attributes


# Content of programs, threads and tools (opt-in) -------------------------------------------


def content_attributes(name: str, value: Any) -> Attributes:
    """``input.value`` or ``output.value`` (``name``) with its MIME type: text as is, anything
    else as JSON. The caller decides whether content may be captured at all."""
    if value is None:
        return {}
    mime_name = INPUT_MIME_TYPE if name == INPUT_VALUE else OUTPUT_MIME_TYPE
    if isinstance(value, str):
        return {name: _clip(value), mime_name: _TEXT}
    return {name: _clip(to_json(value)), mime_name: _JSON}


def tool_input_attributes(arguments: str) -> Attributes:
    """A tool's arguments (content: only when captured)."""
    return {**content_attributes(INPUT_VALUE, arguments), GEN_AI_TOOL_CALL_ARGUMENTS: arguments}


def tool_output_attributes(result: Any) -> Attributes:
    """A tool's result (content: only when captured)."""
    attributes = content_attributes(OUTPUT_VALUE, result)
    if OUTPUT_VALUE in attributes:
        attributes[GEN_AI_TOOL_CALL_RESULT] = attributes[OUTPUT_VALUE]
    return attributes


# Status -----------------------------------------------------------------------------------


def end_ok(span: Span) -> None:
    """End a span that succeeded with status OK (OpenInference sets it; UNSET reads as
    "unknown" in Phoenix). A span already marked ERROR keeps its status."""
    span.set_status(_OK)
    span.end()


_OK = Status(StatusCode.OK)
"""Shared: a ``Status`` is immutable, and building one per span costs more than ending it."""


# Helpers ----------------------------------------------------------------------------------


def invocation_parameters(params: Mapping[str, Any], *, capture_content: bool) -> Any:
    """``params`` fit for a span: never secrets; only sampling settings unless content is
    captured."""
    if not capture_content:
        params = {k: v for k, v in params.items() if k in _SAFE_PARAMETERS}
    return without_secrets(params)


@functools.lru_cache(maxsize=1024)
def is_secret_name(name: str) -> bool:
    """Whether a parameter name looks like it holds a credential (``api_key``,
    ``openai_api_key``, ``accessToken``, ``default_headers``); ``max_tokens`` does not.
    Cached: the same few parameter names come with every call."""
    return any(word.lower() in _SECRET_WORDS for word in _WORD.findall(name))


def without_secrets(value: Any) -> Any:
    """``value`` with credential-looking keys, LangChain secret markers and anything that is
    not plain JSON data (clients, ``SecretStr``...) removed, recursively."""
    if isinstance(value, str | int | float | bool):  # first: most values; the ABC check is slow
        return value
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return [v for v in (without_secrets(item) for item in value) if v is not None]
    if isinstance(value, Mapping):
        if value.get("lc") == 1 and value.get("type") == "secret":
            return None
        cleaned = {}
        for key, item in value.items():
            name = str(key)
            if name.startswith("_") or is_secret_name(name):
                continue
            item = without_secrets(item)
            if item is not None:
                cleaned[name] = item
        return cleaned
    return None


def to_json(value: Any) -> str:
    """Compact JSON; pydantic models (LangChain messages, LlamaIndex events) as their fields,
    anything else JSON cannot encode with ``str()``."""
    return _ENCODER.encode(value)


def _jsonable(value: Any) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        try:
            return dump(mode="json")
        except Exception:  # a model that cannot dump itself is written as text
            return str(value)
    return str(value)


_ENCODER = json.JSONEncoder(default=_jsonable, ensure_ascii=False, separators=(",", ":"))
"""One encoder for every call (``json.dumps`` with options builds a new one each time)."""


def _clip(text: str) -> str:
    if len(text) <= MAX_CONTENT_CHARS:
        return text
    return text[: MAX_CONTENT_CHARS - 3] + "..."


def _messages(
    prefix: str, messages: Sequence[Message], budget: int
) -> list[tuple[str, AttributeValue]]:
    """OpenInference's flattened message list (``<prefix>.<i>.message.role`` and so on): the
    most recent messages whose attributes fit in ``budget``, numbered from 0."""
    flattened: list[list[tuple[str, AttributeValue]]] = []
    used = 0
    for message in reversed(messages):
        items = list(_message_items(message))
        if flattened and used + len(items) > budget:
            break
        flattened.append(items)
        used += len(items)
    return [
        (f"{prefix}.{i}.message.{name}", value)
        for i, items in enumerate(reversed(flattened))
        for name, value in items[:budget]
    ]


def _message_items(message: Message) -> Iterator[tuple[str, AttributeValue]]:
    yield "role", message.role
    if message.content:
        yield "content", _clip(message.content)
    for j, call in enumerate(message.tool_calls):
        key = f"tool_calls.{j}.tool_call"
        yield f"{key}.function.name", call.name
        yield f"{key}.function.arguments", _clip(call.arguments)
        if call.call_id:
            yield f"{key}.id", call.call_id


def _openai_messages(messages: Sequence[Message]) -> dict[str, Any]:
    """The request as Phoenix's playground reads ``input.value``: OpenAI-shaped messages."""
    return {"messages": [{"role": m.role, "content": m.content} for m in messages]}


def _gen_ai_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Messages in the GenAI convention's shape (``role`` + typed ``parts``)."""
    result: list[dict[str, Any]] = []
    for message in messages:
        parts: list[dict[str, Any]] = []
        if message.content:
            parts.append({"type": "text", "content": message.content})
        parts.extend(
            {"type": "tool_call", "id": c.call_id, "name": c.name, "arguments": c.arguments}
            for c in message.tool_calls
        )
        result.append({"role": message.role, "parts": parts})
    return result
