"""Request and response bodies of the API, as pydantic models (they make the OpenAPI schema).

The gateway checks only what it needs itself (the model, the limits, the prompt's size);
every other field, sampling settings, tools, ``response_format``, ``logprobs`` and vLLM's own
extensions included, passes through to the engine exactly as sent. The engine answers with
its own 400 naming a field it cannot honour; nothing is dropped silently.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from autellix_backend.server.prompts import estimate_tokens

Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class ContentPart(BaseModel):
    """One part of a multi-part message; only ``text`` parts count towards the prompt."""

    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = False


MAX_CHOICES = 128
"""Most choices (``n``) one request may ask for."""


class _GenerationParams(BaseModel):
    """Fields common to chat and text completions (the rest pass through as extras)."""

    model_config = ConfigDict(extra="allow")

    model: Annotated[str, Field(min_length=1, max_length=512)]
    max_tokens: Annotated[int | None, Field(ge=1)] = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: Annotated[int, Field(ge=1, le=MAX_CHOICES, description="Choices to generate.")] = 1
    user: Annotated[str | None, Field(max_length=512)] = None

    def requested_max_tokens(self) -> int | None:
        return self.max_tokens

    def prompt_tokens(self) -> int:
        """The prompt's size in tokens as the gateway estimates it (for limits and routing)."""
        return estimate_tokens(self.prompt_text())

    def prompt_text(self) -> str:
        """The prompt's text, as the gateway counts and hashes it."""
        raise NotImplementedError


class ChatCompletionRequest(_GenerationParams):
    """``POST /v1/chat/completions``."""

    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_completion_tokens: Annotated[int | None, Field(ge=1)] = None

    def requested_max_tokens(self) -> int | None:
        if self.max_completion_tokens is not None:
            return self.max_completion_tokens
        return self.max_tokens

    def prompt_text(self) -> str:
        """The messages' text, as the gateway counts and hashes it."""
        parts: list[str] = []
        for message in self.messages:
            parts.append(message.role)
            if isinstance(message.content, str):
                parts.append(message.content)
            elif message.content is not None:
                parts.extend(p.text for p in message.content if p.text is not None)
        return "\n".join(parts)


TokenIds = Annotated[list[int], Field(min_length=1)]


class CompletionRequest(_GenerationParams):
    """``POST /v1/completions``: a prompt as text, token ids, or a list of either."""

    prompt: (
        str
        | Annotated[list[str], Field(min_length=1)]
        | TokenIds
        | Annotated[list[TokenIds], Field(min_length=1)]
    )

    def prompts(self) -> list[str | list[int]]:
        """The prompts, one per completion vLLM runs (a list of token ids is one prompt)."""
        prompt = self.prompt
        if isinstance(prompt, str) or all(isinstance(p, int) for p in prompt):
            return [cast("str | list[int]", prompt)]
        return cast("list[str | list[int]]", prompt)

    def prompt_tokens(self) -> int:
        return sum(len(p) if isinstance(p, list) else estimate_tokens(p) for p in self.prompts())

    def prompt_text(self) -> str:
        """The text prompts joined, or the token ids as text (for prefix hashing)."""
        return "\n".join(p if isinstance(p, str) else " ".join(map(str, p)) for p in self.prompts())


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "autellix"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ProgramCreate(BaseModel):
    """``POST /v1/programs``: start a program session."""

    model_config = ConfigDict(extra="forbid")

    program_id: Annotated[
        str | None,
        Field(
            min_length=1,
            max_length=256,
            pattern=r"^[\x21-\x2b\x2d-\x7e]+$",
            description="Id to use; generated when absent.",
        ),
    ] = None
    metadata: Annotated[dict[str, str], Field(max_length=32)] = Field(default_factory=dict)


class ThreadView(BaseModel):
    thread_id: str
    parent_thread_id: str | None = None
    num_calls: int
    num_active_calls: int
    service: float
    wait: float


class CallView(BaseModel):
    call_id: str
    thread_id: str
    parent_ids: list[str]
    status: str
    engine_id: str | None
    priority: float
    service: float
    wait: float
    prompt_tokens: int
    output_tokens: int


class NodeView(BaseModel):
    node_id: str
    kind: str
    name: str
    thread_id: str
    status: str


class EdgeView(BaseModel):
    source: str
    target: str


class DagView(BaseModel):
    nodes: list[NodeView]
    edges: list[EdgeView]
    num_dropped_nodes: int


class ProgramSummary(BaseModel):
    program_id: str
    owner: str | None
    service: float
    total_service: float
    total_wait: float
    num_calls: int
    num_active_calls: int
    num_threads: int
    engine_ids: list[str]
    created: float
    """Unix time the program started."""
    idle_s: float
    finished: bool
    state: Literal["running", "finished", "failed"] = "running"
    """``finished`` once the program ended (its program span closed, ``DELETE``, idle expiry;
    read from history); ``failed`` once its front end reported that it failed."""
    metadata: dict[str, str]


class ProgramDetail(ProgramSummary):
    threads: list[ThreadView]
    calls: list[CallView]
    dag: DagView


class ProgramList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ProgramSummary]


class ErrorBody(BaseModel):
    message: str
    type: str
    code: str | None = None
    param: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody


class EngineHealth(BaseModel):
    """One engine as its supervisor sees it."""

    state: Literal["starting", "healthy", "failed", "restarting", "stopped"]
    num_restarts: int = Field(description="Times it came back into rotation after failing.")
    last_error: str | None = Field(description="Why it last left rotation (kept once back).")
    last_error_at: float | None = Field(description="Unix time of last_error.")
    num_inflight_calls: int


class Health(BaseModel):
    status: Literal["ok", "degraded", "down"]
    engines: dict[str, bool]
    """Engine id -> in rotation."""
    engine_details: dict[str, EngineHealth]
    num_programs: int
    num_inflight_calls: int


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 409, 413, 429, 503)
}
