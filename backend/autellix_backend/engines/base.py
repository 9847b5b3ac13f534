"""The one interface every engine adapter implements (in-process vLLM, remote vLLM with the
Autellix plugin, remote generic OpenAI-compatible server, simulated engine)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class RequestKind(StrEnum):
    CHAT = "chat"
    COMPLETION = "completion"


@dataclass(frozen=True, slots=True)
class ProgramTag:
    """Program metadata carried by every call (from request headers or defaults)."""

    program_id: str
    thread_id: str = "main"
    call_id: str = ""
    parent_ids: tuple[str, ...] = ()
    service_at_arrival: float = 0.0
    """The program's priority in the backend's global table when the call arrived."""

    def as_xargs(self) -> dict[str, str]:
        """The tag as vLLM ``vllm_xargs`` / ``SamplingParams.extra_args`` (flat strings)."""
        return {
            "autellix_program_id": self.program_id,
            "autellix_thread_id": self.thread_id,
            "autellix_call_id": self.call_id,
            "autellix_parent_ids": ",".join(self.parent_ids),
            "autellix_service": repr(float(self.service_at_arrival)),
        }


@dataclass(frozen=True, slots=True)
class EngineRequest:
    """A validated OpenAI-style request routed to one engine."""

    request_id: str
    kind: RequestKind
    body: Mapping[str, Any]
    """The OpenAI request body (model, messages or prompt, max_tokens, ...)."""
    tag: ProgramTag
    prompt_tokens: int = 0
    """Prompt length as counted by the gateway (for routing and admission)."""


@dataclass(frozen=True, slots=True)
class EngineUsage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    service: float = 0.0
    """Engine execution time attained by the call (seconds), for the process table."""


@dataclass(frozen=True, slots=True)
class EngineChunk:
    """One streamed piece of a response; the last one has ``finish_reason`` and ``usage``."""

    text: str = ""
    finish_reason: str | None = None
    usage: EngineUsage | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EngineLoad:
    num_running: int = 0
    num_waiting: int = 0

    @property
    def num_calls(self) -> int:
        return self.num_running + self.num_waiting


class EngineError(Exception):
    """The engine failed or is unreachable; the gateway answers 503 and marks it unhealthy."""


class EngineAdapter(ABC):
    """An engine behind the gateway. Implementations must never block the event loop."""

    engine_id: str
    model: str
    program_aware: bool = False
    """True when the engine schedules with the Autellix core (not just a priority hint)."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def aclose(self) -> None: ...

    @abstractmethod
    def generate(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        """Stream the response; raise ``EngineError`` when the engine fails."""

    @abstractmethod
    async def abort(self, request_id: str) -> None:
        """Stop a request (client gone) and free its cache."""

    @abstractmethod
    async def health(self) -> bool: ...

    @abstractmethod
    def load(self) -> EngineLoad: ...
