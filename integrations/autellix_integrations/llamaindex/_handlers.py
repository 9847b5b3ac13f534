"""LlamaIndex span and event handlers: thin translators onto the shared ``ProgramRecorder``.

A program is one ``Workflow.run`` (its id from the ``autellix_program_id`` run argument, else
fresh); a thread is one step invocation (``<step>:<uuid>``); an LLM call is the outermost
``LLMChatStartEvent`` / ``LLMCompletionStartEvent`` under a step. A step's first call
depends on what the events that triggered it carried (see ``_flow``). A step that raises is
``error``, steps the workflow stopped because of it are ``cancelled``, and the run's program
is ``failed``.
"""

from __future__ import annotations

import inspect
import uuid
from typing import Any, Self

from llama_index.core.bridge.pydantic import BaseModel, PrivateAttr
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatStartEvent,
    LLMCompletionEndEvent,
    LLMCompletionStartEvent,
)
from llama_index.core.instrumentation.span import SimpleSpan
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from llama_index.core.workflow import Event, Workflow

from autellix_graph import protocol
from autellix_graph._attributes import SESSION_KEYS, session_id
from autellix_graph._hooks import guarded
from autellix_graph._recorder import ProgramRecorder, RecordKind
from autellix_integrations.llamaindex._calls import llm_request, llm_response
from autellix_integrations.llamaindex._flow import EventFlow, triggering_events

_UUID_SUFFIX = 37
"""``-`` plus a UUID: how LlamaIndex ends every span id."""
_RUN_METHODS = frozenset({"run", "run_from"})
_START_EVENTS = (LLMChatStartEvent, LLMCompletionStartEvent)
_END_EVENTS = (LLMChatEndEvent, LLMCompletionEndEvent)
_CANCELLED_EVENT = "SpanCancelledEvent"
"""What LlamaIndex Workflows emit when they stop a step because another one failed."""


class LlamaIndexState:
    """What both handlers share: the recorder and the event flow."""

    def __init__(self) -> None:
        self.recorder = ProgramRecorder()
        self.flow = EventFlow(self.recorder)

    def active(self) -> tuple[ProgramRecorder, EventFlow] | None:
        return None if self.recorder.runtime is None else (self.recorder, self.flow)


def _qualname(span_id: str) -> str:
    return span_id[:-_UUID_SUFFIX] if len(span_id) > _UUID_SUFFIX else span_id


def _program_id(bound_args: inspect.BoundArguments) -> str | None:
    """``workflow.run(autellix_program_id=...)``: the run's start event carries it."""
    for value in bound_args.arguments.values():
        if isinstance(value, Event):
            named = value.get(protocol.PROGRAM_ID_METADATA_KEY)
            if named:
                return str(named)
    return None


def _session_id(bound_args: inspect.BoundArguments) -> str | None:
    """``workflow.run(session_id=...)`` (or ``conversation_id``, ``thread_id``): the
    conversation the run belongs to, the same keys LangGraph runs are read with."""
    for value in bound_args.arguments.values():
        if isinstance(value, Event):
            named = session_id({key: value.get(key) for key in SESSION_KEYS})
            if named:
                return named
    return None


class _SharedState(BaseModel):
    """Both handlers hold the integration's one ``LlamaIndexState``."""

    _state: LlamaIndexState = PrivateAttr()

    @classmethod
    def bound_to(cls, state: LlamaIndexState) -> Self:
        """A handler reporting to ``state``."""
        handler = cls()
        handler._state = state
        return handler


class AutellixSpanHandler(_SharedState, BaseSpanHandler[SimpleSpan]):
    """Turns ``Workflow.run`` spans into programs and step spans into threads."""

    @classmethod
    def class_name(cls) -> str:
        return "AutellixSpanHandler"

    @guarded
    def span_enter(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        parent_id: str | None = None,
        tags: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        recorder = self._state.recorder
        if recorder.runtime is None:
            return
        parent = recorder.get(parent_id) if parent_id is not None else None
        name = _qualname(id_).rsplit(".", 1)[-1]
        if parent is None:
            if isinstance(instance, Workflow) and name in _RUN_METHODS:
                workflow = type(instance).__name__
                recorder.start_program(
                    id_,
                    workflow,
                    program_id=_program_id(bound_args),
                    session_id=_session_id(bound_args),
                )
            return
        if parent.kind is not RecordKind.PROGRAM or name.startswith("_"):
            recorder.alias(id_, parent)
            return
        after = self._state.flow.frontier(parent, triggering_events(bound_args.arguments))
        thread_id = f"{name}:{id_[-_UUID_SUFFIX + 1 :]}"
        recorder.start_step(id_, parent, thread_id, name, after)

    @guarded
    def span_exit(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        result: Any | None = None,
        **kwargs: Any,
    ) -> None:
        self._exit(id_, result, None)

    @guarded
    def span_drop(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        err: BaseException | None = None,
        **kwargs: Any,
    ) -> None:
        self._exit(id_, None, err)

    def new_span(self, *args: Any, **kwargs: Any) -> SimpleSpan | None:
        return None

    def prepare_to_exit_span(self, *args: Any, **kwargs: Any) -> SimpleSpan | None:
        return None

    def prepare_to_drop_span(self, *args: Any, **kwargs: Any) -> SimpleSpan | None:
        return None

    def _exit(self, id_: str, result: Any, error: BaseException | None) -> None:
        state = self._state
        record = state.recorder.get(id_)
        if record is None or record.key != id_:
            state.recorder.pop(id_)
            return
        if record.kind is RecordKind.THREAD:
            state.flow.emitted(record, result)
        state.recorder.end(id_, error)
        if record.kind is RecordKind.PROGRAM:
            state.flow.forget(record.program.program_id)


class AutellixEventHandler(_SharedState, BaseEventHandler):
    """Turns LLM start/end events into LLM calls, and cancellations into cancelled steps."""

    @classmethod
    def class_name(cls) -> str:
        return "AutellixEventHandler"

    @guarded
    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        span_id = event.span_id
        recorder = self._state.recorder
        if span_id is None or recorder.runtime is None:
            return
        if isinstance(event, _START_EVENTS):
            parent = recorder.get(span_id)
            if parent is not None and parent.kind < RecordKind.LLM:
                request = llm_request(event)
                call_id = str(uuid.uuid4())
                recorder.start_call(span_id, parent, parent.thread_id, request, call_id=call_id)
        elif isinstance(event, _END_EVENTS):
            record = recorder.get(span_id)
            if record is not None and record.key == span_id and record.kind is RecordKind.LLM:
                recorder.end_call(span_id, llm_response(event))
        elif type(event).__name__ == _CANCELLED_EVENT:
            recorder.cancel(span_id)
