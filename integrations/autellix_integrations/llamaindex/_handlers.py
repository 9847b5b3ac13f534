"""LlamaIndex span and event handlers that give Workflows what LangGraph apps get.

A program is one ``Workflow.run``; a thread is one step invocation (``W.step-<uuid>``); an LLM
call is the outermost ``LLMChatStartEvent`` / ``LLMCompletionStartEvent`` under a step. Steps
started with no step finishing in between form a parallel group, so the DAG rules of
``autellix_graph`` apply unchanged (Workflows are event-driven, not superstep-based: a step's
first call depends on the steps that finished before it started).
"""

from __future__ import annotations

import inspect
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events import BaseEvent
from llama_index.core.instrumentation.events.llm import (
    LLMChatEndEvent,
    LLMChatStartEvent,
    LLMCompletionEndEvent,
    LLMCompletionStartEvent,
)
from llama_index.core.instrumentation.span.simple import SimpleSpan
from llama_index.core.instrumentation.span_handlers import BaseSpanHandler
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from autellix_graph import protocol
from autellix_graph._attributes import node_attributes, program_attributes, thread_attributes
from autellix_graph._context import CallTag, current_call
from autellix_graph._dag import ROOT_THREAD_ID, DagBuilder, NodeKind
from autellix_graph._hooks import guarded
from autellix_graph._runtime import Runtime
from autellix_graph._tracing import traceparent

_UUID_SUFFIX = 37
"""``-`` plus a UUID: how LlamaIndex ends every span id."""
_START_EVENTS = (LLMChatStartEvent, LLMCompletionStartEvent)
_END_EVENTS = (LLMChatEndEvent, LLMCompletionEndEvent)


@dataclass(slots=True, eq=False)
class _Program:
    program_id: str
    span: Span
    dag: DagBuilder = field(default_factory=DagBuilder)
    lock: threading.Lock = field(default_factory=threading.Lock)
    finished_steps: int = 0
    session_open: bool = False


@dataclass(slots=True, eq=False)
class _Record:
    span_id: str
    program: _Program
    thread_id: str
    kind: str
    span: Span
    tag: CallTag | None = None
    previous_tag: CallTag | None = None


class _State:
    """What both handlers share: the active runtime and the open records."""

    def __init__(self) -> None:
        self.runtime: Runtime | None = None
        self.records: dict[str, _Record] = {}

    def tracer(self) -> trace.Tracer | None:
        return None if self.runtime is None else self.runtime.tracer


def _qualname(span_id: str) -> str:
    return span_id[:-_UUID_SUFFIX] if len(span_id) > _UUID_SUFFIX else span_id


def _is_workflow(instance: Any) -> bool:
    from llama_index.core.workflow import Workflow

    return isinstance(instance, Workflow)


def _start_span(state: _State, name: str, parent: Span | None, attributes: dict[str, Any]) -> Span:
    tracer = state.tracer() or trace.get_tracer(__name__)
    context = None if parent is None else trace.set_span_in_context(parent)
    span = tracer.start_span(name, context=context)
    if span.is_recording():
        span.set_attributes(attributes)
    return span


class AutellixSpanHandler(BaseSpanHandler[SimpleSpan]):
    """Turns ``Workflow.run`` spans into programs and step spans into threads."""

    _state: _State = PrivateAttr()

    def __init__(self, state: _State) -> None:
        super().__init__()
        self._state = state

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
        self._enter(id_, instance, parent_id)

    @guarded
    def span_exit(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        result: Any | None = None,
        **kwargs: Any,
    ) -> None:
        self._exit(id_, None)

    @guarded
    def span_drop(
        self,
        id_: str,
        bound_args: inspect.BoundArguments,
        instance: Any | None = None,
        err: BaseException | None = None,
        **kwargs: Any,
    ) -> None:
        self._exit(id_, err)

    def new_span(self, *args: Any, **kwargs: Any) -> SimpleSpan | None:
        return None

    def prepare_to_exit_span(self, *args: Any, **kwargs: Any) -> SimpleSpan | None:
        return None

    def prepare_to_drop_span(self, *args: Any, **kwargs: Any) -> SimpleSpan | None:
        return None

    def _enter(self, id_: str, instance: Any, parent_id: str | None) -> None:
        state = self._state
        if state.runtime is None:
            return
        parent = state.records.get(parent_id) if parent_id is not None else None
        qualname = _qualname(id_)
        if parent is None:
            if _is_workflow(instance) and qualname.rsplit(".", 1)[-1] in ("run", "run_from"):
                program_id = uuid.uuid4().hex
                name = type(instance).__name__
                span = _start_span(state, name, None, program_attributes(program_id, name))
                program = _Program(program_id, span)
                state.records[id_] = _Record(id_, program, ROOT_THREAD_ID, "program", span)
            return
        step_name = qualname.rsplit(".", 1)[-1]
        if parent.kind == "program" and _is_workflow(instance) and not step_name.startswith("_"):
            program = parent.program
            thread_id = f"{step_name}:{id_[-_UUID_SUFFIX + 1 :]}"
            with program.lock:
                info = program.dag.start_task(thread_id, step_name, program.finished_steps)
            span = _start_span(
                state, step_name, parent.span, thread_attributes(program.program_id, info)
            )
            state.records[id_] = _Record(id_, program, thread_id, "step", span)
            return
        state.records[id_] = parent

    def _exit(self, id_: str, error: BaseException | None) -> None:
        state = self._state
        record = state.records.pop(id_, None)
        if record is None or record.span_id != id_:
            return
        if record.kind == "llm":
            # Normally ended by its end event; a failed call only drops its span.
            if current_call.get() is record.tag:
                current_call.set(record.previous_tag)
            if not record.span.is_recording():
                return
        if error is not None:
            record.span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            record.span.set_attribute(protocol.ATTR_ERROR_KIND, type(error).__name__)
        record.span.end()
        program = record.program
        if record.kind == "step":
            with program.lock:
                program.finished_steps += 1
        elif record.kind == "program":
            with program.lock:
                was_open, program.session_open = program.session_open, False
            runtime = state.runtime
            if was_open and runtime is not None and runtime.sessions is not None:
                runtime.sessions.end(program.program_id)


class AutellixEventHandler(BaseEventHandler):
    """Turns LLM start/end events into DAG nodes, LLM spans and tagged requests."""

    _state: _State = PrivateAttr()

    def __init__(self, state: _State) -> None:
        super().__init__()
        self._state = state

    @classmethod
    def class_name(cls) -> str:
        return "AutellixEventHandler"

    @guarded
    def handle(self, event: BaseEvent, **kwargs: Any) -> None:
        if isinstance(event, _START_EVENTS):
            self._start_call(event)
        elif isinstance(event, _END_EVENTS):
            self._end_call(event)

    def _start_call(self, event: BaseEvent) -> None:
        state = self._state
        runtime = state.runtime
        span_id = event.span_id
        record = state.records.get(span_id) if span_id else None
        if runtime is None or record is None or record.kind == "llm" or span_id is None:
            return
        program = record.program
        call_id = str(uuid.uuid4())
        with program.lock:
            node = program.dag.add_node(call_id, NodeKind.LLM, record.thread_id)
            open_session = not program.session_open
            program.session_open = True
        if open_session and runtime.sessions is not None:
            runtime.sessions.start(program.program_id)
        model = (getattr(event, "model_dict", None) or {}).get("model")
        span = _start_span(
            state,
            f"chat {model}" if model else "chat",
            record.span,
            node_attributes(program.program_id, node, model),
        )
        tag = CallTag(
            program.program_id, record.thread_id, call_id, node.llm_parent_ids, traceparent(span)
        )
        llm = _Record(span_id, program, record.thread_id, "llm", span, tag, current_call.get())
        state.records[span_id] = llm
        current_call.set(tag)

    def _end_call(self, event: BaseEvent) -> None:
        state = self._state
        span_id = event.span_id
        record = state.records.get(span_id) if span_id else None
        if record is None or record.kind != "llm" or record.span_id != span_id:
            return
        if current_call.get() is record.tag:
            current_call.set(record.previous_tag)
        record.span.end()
