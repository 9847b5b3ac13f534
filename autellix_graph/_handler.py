"""The LangChain callback handler that turns LangGraph runs into programs, DAGs and spans.

Every hook is cheap, takes no lock wider than one program, never does I/O on the caller's
thread (sessions go through a background queue, spans through the tracer's processor), and
never raises into the app: a failure is logged and the run goes on untraced.
"""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from autellix_graph import _langchain_calls as lc
from autellix_graph import protocol
from autellix_graph._attributes import (
    INPUT_VALUE,
    OUTPUT_VALUE,
    content_attributes,
    end_ok,
    llm_request_attributes,
    llm_response_attributes,
    llm_span_name,
    node_attributes,
    program_attributes,
    thread_attributes,
    tool_input_attributes,
    tool_output_attributes,
)
from autellix_graph._context import CallTag, current_call
from autellix_graph._dag import ROOT_THREAD_ID, DagBuilder, NodeKind, RunResumed
from autellix_graph._hooks import guarded
from autellix_graph._runtime import Runtime
from autellix_graph._settings import Settings
from autellix_graph._tracing import traceparent

if TYPE_CHECKING:
    from langchain_core.outputs import LLMResult

_R = TypeVar("_R")

_INTERRUPTS = frozenset({"GraphInterrupt", "NodeInterrupt"})
_BUBBLE_UPS = frozenset({"GraphBubbleUp", "ParentCommand", *_INTERRUPTS})
_MAX_SUSPENDED = 10_000
_MAX_ID_LENGTH = 200
_UNSAFE_ID_CHARS = re.compile(r"[^\x21-\x2b\x2d-\x7e]")
_SAFE_PUNCTUATION = "!\"#$&'()*+-./:;<=>?@[\\]^_`{|}~"

_root_owners: dict[UUID, AutellixCallbackHandler] = {}
"""Root run id -> the handler tracing it, so an explicit handler and the global one never
trace the same run twice (the explicit one sees the root first)."""


class _Kind(IntEnum):
    ROOT = 0
    TASK = 1
    NESTED = 2
    LLM = 3
    TOOL = 4


@dataclass(slots=True, eq=False)
class _Program:
    program_id: str
    graph_name: str
    span: Span
    langgraph_thread_id: str | None
    session_id: str | None
    """The conversation (LangGraph ``thread_id``, ``session_id`` metadata) or None."""
    dag: DagBuilder = field(default_factory=DagBuilder)
    lock: threading.Lock = field(default_factory=threading.Lock)
    session_open: bool = False
    interrupted_threads: set[str] = field(default_factory=set)


@dataclass(slots=True, eq=False)
class _Run:
    run_id: UUID
    program: _Program
    thread_id: str
    kind: _Kind
    span: Span
    tag: CallTag | None = None
    previous_tag: CallTag | None = None
    owns_program: bool = False


def _safe_id(namespace: str) -> str:
    """``namespace`` as an id the backend accepts: printable ASCII, no space or comma, at most
    ``_MAX_ID_LENGTH`` characters (node names may hold anything)."""
    if _UNSAFE_ID_CHARS.search(namespace) is not None:
        namespace = quote(namespace, safe=_SAFE_PUNCTUATION)
    if len(namespace) > _MAX_ID_LENGTH:
        digest = hashlib.sha1(namespace.encode(), usedforsecurity=False).hexdigest()[:16]
        namespace = f"{namespace[: _MAX_ID_LENGTH - 17]}~{digest}"
    return namespace


def _namespace(metadata: Mapping[str, Any] | None) -> str | None:
    """The LangGraph task namespace in run metadata, made safe for headers."""
    namespace = metadata.get("langgraph_checkpoint_ns") if metadata else None
    return _safe_id(str(namespace)) if namespace else None


def _start_span(
    runtime: Runtime,
    name: str,
    parent: Span | None,
    attributes: Callable[[], dict[str, AttributeValue]],
) -> Span:
    """Start a span under ``parent``; build its attributes only if it is recorded (with no
    tracer provider configured, spans cost next to nothing)."""
    if parent is None or not parent.get_span_context().is_valid:
        context = None  # no tracer configured: skip building a context nobody reads
    else:
        context = trace.set_span_in_context(parent)
    span = runtime.tracer.start_span(name, context=context)
    if span.is_recording():
        span.set_attributes(attributes())
    return span


def _exception_name(error: BaseException) -> str:
    return type(error).__name__


class AutellixCallbackHandler(BaseCallbackHandler):
    """Builds each LangGraph run's program DAG, emits its spans and tags its LLM calls.

    Pass it per run, or let :func:`autellix_graph.instrument` attach one to every run:

    >>> handler = AutellixCallbackHandler(base_url="http://127.0.0.1:8000")  # doctest: +SKIP
    >>> graph.invoke(inputs, config={"callbacks": [handler]})  # doctest: +SKIP

    Keyword arguments are those of :class:`autellix_graph.Settings` (``base_url``,
    ``api_key``, ``otlp_endpoint``, ``sessions``, ``timeout``), defaulting to ``AUTELLIX_*``
    environment variables, plus an optional OpenTelemetry ``tracer_provider``.
    """

    run_inline = True
    """Hooks run in the caller's context: that is how the current call reaches httpx."""
    raise_error = False

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        settings: Settings | None = None,
        **setting_overrides: Any,
    ) -> None:
        super().__init__()
        self._runs: dict[UUID, _Run] = {}
        self._suspended: OrderedDict[str, _Program] = OrderedDict()
        self._suspended_lock = threading.Lock()
        self._runtime: Runtime | None = None
        if settings is None:
            settings = Settings.from_env(**setting_overrides)
        if not settings.disabled:
            self._runtime = Runtime.build(settings, tracer_provider)

    @classmethod
    def _inactive(cls) -> AutellixCallbackHandler:
        """A handler that ignores everything until :meth:`_activate` (for the global hook)."""
        return cls(settings=Settings(disabled=True))

    def _activate(self, runtime: Runtime | None) -> Runtime | None:
        """Swap the runtime (None deactivates); return the previous one for closing."""
        previous, self._runtime = self._runtime, runtime
        return previous

    @property
    def settings(self) -> Settings | None:
        """The settings in force, or None while inactive."""
        return None if self._runtime is None else self._runtime.settings

    def force_flush(self, timeout: float = 5.0) -> bool:
        """Export pending spans and send pending session calls; False on timeout."""
        return True if self._runtime is None else self._runtime.flush(timeout)

    def close(self) -> None:
        """Flush, then release the exporter and the session client this handler owns."""
        runtime = self._activate(None)
        if runtime is not None:
            runtime.close()

    # Events LangChain need not send us (plain attributes: read on every event).
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True

    # Chains: the graph (program), its tasks (threads) and everything nested in them ---------

    @guarded
    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        runtime = self._runtime
        if runtime is None:
            return
        if parent_run_id is None:
            program = self._start_program(runtime, run_id, metadata or {}, kwargs.get("name"))
            if program is not None:
                self._capture(runtime, program.span, INPUT_VALUE, inputs)
            return
        parent = self._runs.get(parent_run_id)
        if parent is None:
            return
        namespace = _namespace(metadata)
        if namespace is None or namespace == parent.thread_id or parent.kind >= _Kind.LLM:
            self._runs[run_id] = parent
            return
        assert metadata is not None
        program = parent.program
        node_name = str(metadata.get("langgraph_node") or kwargs.get("name") or "node")
        with program.lock:
            step = int(metadata.get("langgraph_step", 0))
            info = program.dag.start_task(namespace, node_name, step)
        span = _start_span(
            runtime,
            node_name,
            parent.span,
            lambda: thread_attributes(program.program_id, info, program.session_id),
        )
        self._capture(runtime, span, INPUT_VALUE, inputs)
        self._runs[run_id] = _Run(run_id, program, namespace, _Kind.TASK, span)

    @guarded
    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.pop(run_id, None)
        if run is None or run.run_id != run_id:
            return
        runtime = self._runtime
        if runtime is not None:
            self._capture(runtime, run.span, OUTPUT_VALUE, outputs)
        if run.kind is _Kind.ROOT:
            self._finish_program(run, None)
        else:
            end_ok(run.span)

    @guarded
    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.pop(run_id, None)
        if run is None or run.run_id != run_id:
            return
        name = _exception_name(error)
        if name in _INTERRUPTS and run.kind is _Kind.TASK:
            self._record_interrupt(run)
        if run.kind is _Kind.ROOT:
            self._finish_program(run, None if name in _BUBBLE_UPS else error)
            return
        if name in _BUBBLE_UPS:
            end_ok(run.span)
        else:
            self._mark_error(run.span, error)
            run.span.end()

    # LLM calls ------------------------------------------------------------------------------

    @guarded
    def on_chat_model_start(
        self,
        serialized: dict[str, Any] | None,
        messages: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start_call(run_id, parent_run_id, metadata, kwargs, serialized, messages, True)

    @guarded
    def on_llm_start(
        self,
        serialized: dict[str, Any] | None,
        prompts: list[str],
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._start_call(run_id, parent_run_id, metadata, kwargs, serialized, prompts, False)

    @guarded
    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._end_call(run_id)
        if run is None:
            return
        runtime = self._runtime
        if run.span.is_recording() and runtime is not None:
            capture = runtime.settings.capture_content
            described = lc.llm_response(response)
            run.span.set_attributes(llm_response_attributes(described, capture_content=capture))
        end_ok(run.span)
        if run.owns_program:
            self._finish_program(run, None)

    @guarded
    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._end_call(run_id)
        if run is None:
            return
        self._mark_error(run.span, error)
        run.span.end()
        if run.owns_program:
            self._finish_program(run, error)

    # Tools ----------------------------------------------------------------------------------

    @guarded
    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        parent = self._runs.get(parent_run_id) if parent_run_id is not None else None
        runtime = self._runtime
        if parent is None or runtime is None:
            return
        program = parent.program
        thread_id = self._thread_of(parent, metadata)
        name = (serialized or {}).get("name") or kwargs.get("name") or "tool"
        with program.lock:
            node = program.dag.add_node(str(run_id), NodeKind.TOOL, thread_id)
        span = _start_span(
            runtime,
            f"execute_tool {name}",
            parent.span,
            lambda: node_attributes(program.program_id, node, str(name), program.session_id),
        )
        if runtime.settings.capture_content and span.is_recording():
            span.set_attributes(tool_input_attributes(str(input_str)))
        self._runs[run_id] = _Run(run_id, program, thread_id, _Kind.TOOL, span)

    @guarded
    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.pop(run_id, None)
        if run is not None and run.run_id == run_id:
            runtime = self._runtime
            if runtime is not None and runtime.settings.capture_content and run.span.is_recording():
                run.span.set_attributes(tool_output_attributes(getattr(output, "content", output)))
            end_ok(run.span)

    @guarded
    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        run = self._runs.pop(run_id, None)
        if run is not None and run.run_id == run_id:
            self._mark_error(run.span, error)
            run.span.end()

    # Internals ------------------------------------------------------------------------------

    @staticmethod
    def _thread_of(parent: _Run, metadata: Mapping[str, Any] | None) -> str:
        return _namespace(metadata) or parent.thread_id

    def _start_program(
        self, runtime: Runtime, run_id: UUID, metadata: Mapping[str, Any], name: str | None
    ) -> _Program | None:
        if _root_owners.setdefault(run_id, self) is not self:
            return None
        graph_name = name or "program"
        thread_key = metadata.get("thread_id")
        langgraph_thread_id = None if thread_key is None else str(thread_key)
        session_id = lc.session_id(metadata)
        program = self._resume(langgraph_thread_id)
        if program is None:
            program_id = str(metadata.get(protocol.PROGRAM_ID_METADATA_KEY) or uuid.uuid4().hex)
            span = _start_span(
                runtime,
                graph_name,
                None,
                lambda: program_attributes(program_id, graph_name, session_id),
            )
            program = _Program(program_id, graph_name, span, langgraph_thread_id, session_id)
        else:
            resumed = program
            program.span = _start_span(
                runtime,
                graph_name,
                None,
                lambda: program_attributes(resumed.program_id, graph_name, resumed.session_id),
            )
        self._runs[run_id] = _Run(run_id, program, ROOT_THREAD_ID, _Kind.ROOT, program.span)
        return program

    def _resume(self, langgraph_thread_id: str | None) -> _Program | None:
        """The program an interrupted run left for this LangGraph thread, if any."""
        if langgraph_thread_id is None or not self._suspended:
            return None
        with self._suspended_lock:
            program = self._suspended.pop(langgraph_thread_id, None)
        if program is not None:
            with program.lock:
                program.dag.apply(RunResumed())
                program.interrupted_threads.clear()
        return program

    def _finish_program(self, run: _Run, error: BaseException | None) -> None:
        _root_owners.pop(run.run_id, None)
        program = run.program
        if error is not None:
            self._mark_error(program.span, error)
            program.span.end()
        else:
            end_ok(program.span)
        runtime = self._runtime
        with program.lock:
            was_open, program.session_open = program.session_open, False
            interrupted = bool(program.interrupted_threads)
        if was_open and runtime is not None and runtime.sessions is not None:
            runtime.sessions.end(program.program_id)
        if interrupted and error is None and program.langgraph_thread_id is not None:
            with self._suspended_lock:
                self._suspended[program.langgraph_thread_id] = program
                while len(self._suspended) > _MAX_SUSPENDED:
                    self._suspended.popitem(last=False)

    def _start_call(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: dict[str, Any] | None,
        kwargs: Mapping[str, Any],
        serialized: Mapping[str, Any] | None,
        messages: Any,
        chat: bool,
    ) -> None:
        runtime = self._runtime
        if runtime is None:
            return
        owns_program = False
        if parent_run_id is None:
            program = self._start_program(runtime, run_id, metadata or {}, kwargs.get("name"))
            if program is None:
                return
            parent = self._runs[run_id]
            owns_program = True
        else:
            found = self._runs.get(parent_run_id)
            if found is None:
                return
            parent = found
            program = parent.program
        thread_id = self._thread_of(parent, metadata)
        call_id = str(run_id)
        with program.lock:
            node = program.dag.add_node(call_id, NodeKind.LLM, thread_id)
            open_session = not program.session_open
            program.session_open = True
        if open_session and runtime.sessions is not None:
            runtime.sessions.start(program.program_id)
        described = lc.llm_request(
            serialized,
            metadata,
            kwargs.get("invocation_params"),
            lc.chat_messages(messages) if chat else lc.prompt_messages(messages),
        )
        capture = runtime.settings.capture_content
        span = _start_span(
            runtime,
            llm_span_name(described),
            parent.span,
            lambda: {
                **node_attributes(program.program_id, node, described.model, program.session_id),
                **llm_request_attributes(described, capture_content=capture),
            },
        )
        tag = CallTag(
            program.program_id, thread_id, call_id, node.llm_parent_ids, traceparent(span)
        )
        previous = current_call.get()
        run = _Run(run_id, program, thread_id, _Kind.LLM, span, tag, previous, owns_program)
        self._runs[run_id] = run
        current_call.set(tag)

    def _end_call(self, run_id: UUID) -> _Run | None:
        run = self._runs.pop(run_id, None)
        if run is None or run.run_id != run_id or run.kind is not _Kind.LLM:
            return None
        if current_call.get() is run.tag:
            current_call.set(run.previous_tag)
        return run

    def _record_interrupt(self, run: _Run) -> None:
        program = run.program
        runtime = self._runtime
        nested = run.thread_id + "|"
        with program.lock:
            if any(t.startswith(nested) for t in program.interrupted_threads):
                program.interrupted_threads.add(run.thread_id)
                return
            program.interrupted_threads.add(run.thread_id)
            node = program.dag.add_node(uuid.uuid4().hex, NodeKind.INTERRUPT, run.thread_id)
        if runtime is not None:
            span = _start_span(
                runtime,
                "interrupt",
                run.span,
                lambda: node_attributes(program.program_id, node, None, program.session_id),
            )
            end_ok(span)

    @staticmethod
    def _capture(runtime: Runtime, span: Span, name: str, value: Any) -> None:
        """Put a graph's or task's input or output on its span, if content is captured."""
        if runtime.settings.capture_content and span.is_recording():
            span.set_attributes(content_attributes(name, value))

    @staticmethod
    def _mark_error(span: Span, error: BaseException) -> None:
        name = _exception_name(error)
        span.set_attribute(protocol.ATTR_ERROR_KIND, name)
        span.set_status(Status(StatusCode.ERROR, name))
