"""The one interface every engine adapter implements (in-process vLLM, remote vLLM with the
Autellix plugin, remote generic OpenAI-compatible server, simulated engine)."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Coroutine, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from autellix_backend.engines.kv_events import KVEventSource
from autellix_protocol.snapshot import ProgramSnapshot
from autellix_protocol.xargs import CallTag

log = logging.getLogger("autellix.engines")


class RequestKind(StrEnum):
    CHAT = "chat"
    COMPLETION = "completion"


ProgramTag = CallTag
"""Program metadata carried by every call: ids and the program's snapshot (the protocol's
``CallTag``; ``as_xargs()`` writes it as ``vllm_xargs``)."""


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
    event: Mapping[str, Any] | None = None
    """The engine's own OpenAI object (a whole response, or one stream chunk) from an
    ``openai_native`` engine; the gateway relays it as is, apart from the id."""


def event_text(event: Mapping[str, Any]) -> str:
    """The text of an OpenAI object's first choice (chunk delta, message, or completion)."""
    choices = event.get("choices") or ()
    if not choices:
        return ""
    choice = choices[0]
    for key in ("delta", "message"):
        holder = choice.get(key)
        if isinstance(holder, Mapping):
            return str(holder.get("content") or "")
    return str(choice.get("text") or "")


@dataclass(frozen=True, slots=True)
class EngineLoad:
    num_running: int = 0
    num_waiting: int = 0

    @property
    def num_calls(self) -> int:
        return self.num_running + self.num_waiting


class EngineError(Exception):
    """The engine failed or is unreachable; the gateway answers 503 and marks it unhealthy."""


class RequestRejected(ValueError):
    """The engine cannot honour the request (the caller's 400, naming the field in ``param``)."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class EngineAdapter(ABC):
    """An engine behind the gateway. Implementations must never block the event loop."""

    engine_id: str
    model: str
    program_aware: bool = False
    """True when the engine schedules with the Autellix core (not just a priority hint)."""
    openai_native: bool = False
    """True when ``generate`` yields the engine's own OpenAI objects in ``EngineChunk.event``
    (the request body's ``stream`` decides their shape); the gateway relays them instead of
    building responses from ``text``."""

    @abstractmethod
    async def start(self) -> None: ...

    @abstractmethod
    async def aclose(self) -> None: ...

    @abstractmethod
    def generate(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        """Stream the response; raise ``EngineError`` when the engine fails."""

    def check_request(self, kind: RequestKind, body: Mapping[str, Any]) -> None:
        """Raise ``RequestRejected`` for a request this engine can never honour; the gateway
        asks before admitting the call, so such a request changes nothing."""
        return None

    @abstractmethod
    async def abort(self, request_id: str) -> None:
        """Stop a request (client gone) and free its cache."""

    @abstractmethod
    async def health(self) -> bool: ...

    @abstractmethod
    def load(self) -> EngineLoad: ...

    def kv_event_source(self) -> KVEventSource | None:
        """Where the engine publishes its KV events, for routing by cache contents (None: it
        publishes none)."""
        return None

    def end_program(self, program_id: str) -> None:  # noqa: B027
        """The program ended at the front end: drop what the engine keeps for it (its held
        KV). Must neither block nor raise; the default does nothing (no such state, or an
        engine the front end cannot reach between calls, which ends holds on their TTL)."""

    def refresh(self, program_id: str, snapshot: ProgramSnapshot) -> None:  # noqa: B027
        """The program's state changed at the front end: re-rank its calls still waiting here.

        Engines the front end cannot reach between calls (a remote vLLM) keep the snapshot
        each call arrived with; the default does nothing.
        """


class Notices:
    """Notices an adapter sends without waiting for them (a program's end): each runs as a
    task kept here until it is done, and a failure is logged, never raised, so the gateway's
    hooks neither block nor throw."""

    def __init__(self, engine_id: str) -> None:
        self.engine_id = engine_id
        self._tasks: set[asyncio.Task[Any]] = set()

    def send(self, notice: Coroutine[Any, Any, Any], what: str) -> None:
        """Run ``notice`` on the running loop; without one it is dropped (closed unrun)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            notice.close()
            return
        task = loop.create_task(notice)
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._done(done, what))

    def _done(self, task: asyncio.Task[Any], what: str) -> None:
        self._tasks.discard(task)
        error = None if task.cancelled() else task.exception()
        if error is not None:
            log.warning("engine %s: %s failed: %r", self.engine_id, what, error)
