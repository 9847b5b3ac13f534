"""``ProgramRecorder``: what every front end records, whatever its framework.

A front end (the LangGraph callback handler, the LlamaIndex span and event handlers) only
translates its framework's events into the recorder's calls: a program starts or finishes, a
thread starts (after a superstep, or after the events that triggered it), an LLM call, a tool
call or an interrupt happens, a run ends well, raises or is cancelled. The recorder owns the
rest, once for all front ends: each program's lock and DAG, the spans and how they end, the
backend session, programs suspended until a resume, the context variables that carry the call
in flight to the HTTP client, and the warning about calls whose requests went out untagged.

Records are keyed by the framework's own run or span ids (any hashable); a nested run that
adds nothing is an *alias* of its parent's record. No method raises for an unknown key.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode
from opentelemetry.util.types import AttributeValue

from autellix_graph import protocol
from autellix_graph._attributes import (
    LlmRequest,
    LlmResponse,
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
from autellix_graph._context import CallTag, current_call, current_program
from autellix_graph._dag import (
    ROOT_THREAD_ID,
    DagBuilder,
    Frontier,
    NodeKind,
    RunResumed,
    ThreadInfo,
)
from autellix_graph._runtime import Runtime
from autellix_graph._settings import Settings
from autellix_graph._tracing import start_span, traceparent

_log = logging.getLogger("autellix_graph")

MAX_SUSPENDED = 10_000
"""Interrupted programs kept for a resume; the oldest is dropped beyond this."""
CANCELLATIONS: tuple[type[BaseException], ...] = (
    asyncio.CancelledError,
    concurrent.futures.CancelledError,
)
"""Exceptions that mean a run was stopped from outside rather than failed by itself."""
_UNTAGGED_WARNING = (
    "autellix: LLM call %s of program %s sent no request tagged with its ids, so the service "
    "schedules it as an unrelated call; give the model a client from chat_openai(), "
    "openai_like() or http_client() (this is logged once)"
)


class RecordKind(IntEnum):
    """What a record stands for."""

    PROGRAM = 0
    THREAD = 1
    LLM = 2
    TOOL = 3


@dataclass(slots=True, eq=False)
class ProgramState:
    """One program as the front end sees it while it runs."""

    program_id: str
    name: str
    span: Span
    session_id: str | None
    """The conversation the program belongs to (OpenInference ``session.id``), if named."""
    resume_key: str | None
    """Key under which an interrupted run waits for its resume (a LangGraph ``thread_id``)."""
    dag: DagBuilder = field(default_factory=DagBuilder)
    lock: threading.Lock = field(default_factory=threading.Lock)
    session_open: bool = False
    interrupted_threads: set[str] = field(default_factory=set)


@dataclass(slots=True, eq=False)
class Record:
    """A run the recorder follows: the program itself, a thread, an LLM call or a tool."""

    key: Hashable
    program: ProgramState
    thread_id: str
    kind: RecordKind
    span: Span
    tag: CallTag | None = None
    """The LLM call's ids (LLM records only)."""
    previous_tag: CallTag | None = None
    previous_program: str | None = None
    """``current_program`` before this record set it (program and thread records)."""
    owns_program: bool = False
    """An LLM call run on its own: its end ends its program."""
    cancelled: bool = False
    child_context: Context | None = None
    """The OpenTelemetry context with ``span`` current, made once for all of its children."""


class ProgramRecorder:
    """Programs, threads, calls and tools of one front end, recorded the same way everywhere.

    >>> recorder = ProgramRecorder(Runtime.build(Settings(), None))
    >>> program = recorder.start_program("run-1", "demo", program_id="order-1")
    >>> call = recorder.start_call("llm-1", program, program.thread_id, LlmRequest("m"))
    >>> call.tag.program_id, call.tag.parent_ids
    ('order-1', ())
    >>> recorder.end_call("llm-1")
    >>> recorder.end("run-1")
    """

    def __init__(self, runtime: Runtime | None = None) -> None:
        self._runtime = runtime
        self._records: dict[Hashable, Record] = {}
        self._suspended: OrderedDict[str, ProgramState] = OrderedDict()
        self._suspended_lock = threading.Lock()
        self._warned_untagged = False

    # Runtime ------------------------------------------------------------------------------

    @property
    def runtime(self) -> Runtime | None:
        """What the recorder talks to; None while inactive (every call is then a no-op)."""
        return self._runtime

    @property
    def settings(self) -> Settings | None:
        return None if self._runtime is None else self._runtime.settings

    def activate(self, runtime: Runtime | None) -> Runtime | None:
        """Swap the runtime (None deactivates); return the previous one for closing."""
        previous, self._runtime = self._runtime, runtime
        return previous

    def attach(self, tracer_provider: trace.TracerProvider | None = None, **settings: Any) -> bool:
        """Activate with :class:`Settings` from ``settings`` and ``AUTELLIX_*`` variables
        (closing the runtime in force, if any); False, and nothing attached, when disabled."""
        resolved = Settings.from_env(**settings)
        if resolved.disabled:
            return False
        previous = self.activate(Runtime.build(resolved, tracer_provider))
        self._warned_untagged = False
        if previous is not None:
            previous.close()
        return True

    def force_flush(self, timeout: float = 5.0) -> bool:
        """Export pending spans and send pending session calls; False on timeout."""
        runtime = self._runtime
        return True if runtime is None else runtime.flush(timeout)

    def close(self) -> None:
        """Deactivate, flush, and release the exporter and the session client."""
        runtime = self.activate(None)
        if runtime is not None:
            runtime.close()

    # Records by framework key ---------------------------------------------------------------

    def get(self, key: Hashable) -> Record | None:
        return self._records.get(key)

    def alias(self, key: Hashable, record: Record) -> None:
        """Let ``key`` (a nested run that adds nothing) stand for ``record``."""
        self._records[key] = record

    def pop(self, key: Hashable) -> Record | None:
        """Forget ``key``; return its record only if ``key`` is the record's own key."""
        record = self._records.pop(key, None)
        return record if record is not None and record.key == key else None

    # Programs -----------------------------------------------------------------------------

    def start_program(
        self,
        key: Hashable,
        name: str,
        *,
        program_id: str | None = None,
        session_id: str | None = None,
        resume_key: str | None = None,
        inputs: Any = None,
    ) -> Record | None:
        """Start a program (or continue the interrupted one waiting under ``resume_key``)."""
        runtime = self._runtime
        if runtime is None:
            return None
        program = self._resume(resume_key)
        if program is None:
            pid = program_id or uuid.uuid4().hex
            span = _start_span(
                runtime, name, None, lambda: program_attributes(pid, name, session_id)
            )
            program = ProgramState(pid, name, span, session_id, resume_key)
        else:
            resumed = program
            program.span = _start_span(
                runtime,
                name,
                None,
                lambda: program_attributes(resumed.program_id, name, resumed.session_id),
            )
        record = Record(key, program, ROOT_THREAD_ID, RecordKind.PROGRAM, program.span)
        self._enter(record)
        self.capture(record, inputs, output=False)
        self._records[key] = record
        return record

    # Threads ------------------------------------------------------------------------------

    def start_thread(
        self, key: Hashable, parent: Record, thread_id: str, node_name: str, superstep: int
    ) -> Record | None:
        """A task of a superstep-based program (LangGraph): see ``DagBuilder.start_task``."""
        program = parent.program
        with program.lock:
            info = program.dag.start_task(thread_id, node_name, superstep)
        return self._open_thread(key, parent, info)

    def start_step(
        self, key: Hashable, parent: Record, thread_id: str, node_name: str, after: Frontier
    ) -> Record | None:
        """A step of an event-driven program (LlamaIndex): its first call depends on
        ``after``, the frontiers of the events that triggered it."""
        program = parent.program
        with program.lock:
            info = program.dag.start_flow_task(thread_id, node_name, after)
        return self._open_thread(key, parent, info)

    def frontier(self, record: Record, thread_id: str | None = None) -> Frontier:
        """What the next call of ``record``'s thread (or of ``thread_id`` in its program) would
        depend on: what an event it emits now carries to the steps it triggers."""
        program = record.program
        with program.lock:
            return program.dag.frontier(thread_id or record.thread_id)

    def join(self, record: Record, frontier: Frontier) -> None:
        """The next call of ``record``'s thread also depends on ``frontier``."""
        program = record.program
        with program.lock:
            program.dag.join(record.thread_id, frontier)

    def _open_thread(self, key: Hashable, parent: Record, info: ThreadInfo) -> Record | None:
        runtime = self._runtime
        if runtime is None:
            return None
        program = parent.program
        span = _start_span(
            runtime,
            info.node_name,
            parent,
            lambda: thread_attributes(program.program_id, info, program.session_id),
        )
        record = Record(key, program, info.thread_id, RecordKind.THREAD, span)
        self._enter(record)
        self._records[key] = record
        return record

    # LLM calls ----------------------------------------------------------------------------

    def start_call(
        self,
        key: Hashable,
        parent: Record,
        thread_id: str,
        request: LlmRequest,
        *,
        owns_program: bool = False,
        call_id: str | None = None,
    ) -> Record | None:
        """An LLM call of ``thread_id``: a DAG node, a span, a session opened on the
        program's first call, and the call's ids made current for the HTTP client."""
        runtime = self._runtime
        if runtime is None:
            return None
        program = parent.program
        call_id = call_id or str(key)
        with program.lock:
            node = program.dag.add_node(call_id, NodeKind.LLM, thread_id)
            open_session = not program.session_open
            program.session_open = True
        if open_session and runtime.sessions is not None:
            runtime.sessions.start(program.program_id)
        capture = runtime.settings.capture_content
        span = _start_span(
            runtime,
            llm_span_name(request),
            parent,
            lambda: {
                **node_attributes(program.program_id, node, request.model, program.session_id),
                **llm_request_attributes(request, capture_content=capture),
            },
        )
        tag = CallTag(
            program.program_id, thread_id, call_id, node.llm_parent_ids, traceparent(span)
        )
        previous_program = parent.previous_program if owns_program else None
        record = Record(
            key,
            program,
            thread_id,
            RecordKind.LLM,
            span,
            tag,
            current_call.get(),
            previous_program,
            owns_program,
        )
        self._records[key] = record
        current_call.set(tag)
        return record

    def end_call(
        self,
        key: Hashable,
        response: LlmResponse | None = None,
        error: BaseException | None = None,
    ) -> None:
        """End an LLM call: restore the previous current call, record usage, end its span."""
        record = self.pop(key)
        if record is None or record.kind is not RecordKind.LLM:
            return
        if current_call.get() is record.tag:
            current_call.set(record.previous_tag)
        runtime = self._runtime
        if response is not None and runtime is not None and record.span.is_recording():
            capture = runtime.settings.capture_content
            record.span.set_attributes(llm_response_attributes(response, capture_content=capture))
        self._check_tagged(record)
        self._end_span(record, error)
        if record.owns_program:
            self._finish_program(record, error)

    def _check_tagged(self, record: Record) -> None:
        settings = self.settings
        tag = record.tag
        if self._warned_untagged or tag is None or settings is None or settings.base_url is None:
            return
        if tag.sent.count == 0:
            self._warned_untagged = True
            _log.warning(_UNTAGGED_WARNING, tag.call_id, tag.program_id)

    # Tools and interrupts -----------------------------------------------------------------

    def start_tool(
        self, key: Hashable, parent: Record, thread_id: str, name: str, arguments: str | None
    ) -> Record | None:
        """A tool call of ``thread_id``: a DAG node the thread's next LLM call depends on."""
        runtime = self._runtime
        if runtime is None:
            return None
        program = parent.program
        with program.lock:
            node = program.dag.add_node(str(key), NodeKind.TOOL, thread_id)
        span = _start_span(
            runtime,
            f"execute_tool {name}",
            parent,
            lambda: node_attributes(program.program_id, node, name, program.session_id),
        )
        if arguments is not None and runtime.settings.capture_content and span.is_recording():
            span.set_attributes(tool_input_attributes(arguments))
        record = Record(key, program, thread_id, RecordKind.TOOL, span)
        self._records[key] = record
        return record

    def interrupt(self, record: Record) -> None:
        """``record``'s thread stopped for human input: an interrupt node, and the program
        waits under its resume key when it ends (only the innermost interrupted thread
        gets the node)."""
        program = record.program
        nested = record.thread_id + "|"
        with program.lock:
            innermost = not any(t.startswith(nested) for t in program.interrupted_threads)
            program.interrupted_threads.add(record.thread_id)
            if not innermost:
                return
            node = program.dag.add_node(uuid.uuid4().hex, NodeKind.INTERRUPT, record.thread_id)
        runtime = self._runtime
        if runtime is not None:
            span = _start_span(
                runtime,
                "interrupt",
                record,
                lambda: node_attributes(program.program_id, node, None, program.session_id),
            )
            end_ok(span)

    # Ends ---------------------------------------------------------------------------------

    def cancel(self, key: Hashable) -> None:
        """Mark ``key``'s run cancelled: its end will say so even if it returns normally."""
        record = self._records.get(key)
        if record is not None:
            record.cancelled = True

    def capture(self, record: Record, value: Any, *, output: bool) -> None:
        """Put a program's, thread's or tool's input or output on its span, if content is
        captured."""
        runtime = self._runtime
        if value is None or runtime is None or not runtime.settings.capture_content:
            return
        if not record.span.is_recording():
            return
        if record.kind is RecordKind.TOOL:
            if output:
                record.span.set_attributes(tool_output_attributes(value))
            return
        name = "output.value" if output else "input.value"
        record.span.set_attributes(content_attributes(name, value))

    def end(self, key: Hashable, error: BaseException | None = None, output: Any = None) -> None:
        """End a program, thread or tool run: well (``error`` None), raised or cancelled
        (``error`` one of ``CANCELLATIONS``, or :meth:`cancel` called before)."""
        found = self._records.get(key)
        if found is not None and found.key == key and found.kind is RecordKind.LLM:
            self.end_call(key, None, error)
            return
        record = self.pop(key)
        if record is None:
            return
        self.capture(record, output, output=True)
        if record.kind is RecordKind.PROGRAM:
            self._finish_program(record, error)
            return
        self._leave(record)
        self._end_span(record, error)

    def _finish_program(self, record: Record, error: BaseException | None) -> None:
        program = record.program
        self._leave(record)
        with program.lock:
            interrupted = bool(program.interrupted_threads)
        resume_key = program.resume_key
        paused = interrupted and error is None and resume_key is not None
        if error is not None:
            _mark(program.span, protocol.STATE_FAILED, error)
            program.span.end()
        else:
            if paused:
                program.span.set_attribute(protocol.ATTR_STATE, protocol.STATE_INTERRUPTED)
            end_ok(program.span)
        if not paused or resume_key is None:
            self._end_session(program)
            return
        # Paused for human input: the backend session stays open, so the resumed run continues
        # the same program with the service it attained (an abandoned one ends by idle timeout).
        with self._suspended_lock:
            self._suspended[resume_key] = program
            evicted = [
                self._suspended.popitem(last=False)[1]
                for _ in range(len(self._suspended) - MAX_SUSPENDED)
            ]
        for old in evicted:
            self._end_session(old)

    def _end_session(self, program: ProgramState) -> None:
        runtime = self._runtime
        with program.lock:
            was_open, program.session_open = program.session_open, False
        if was_open and runtime is not None and runtime.sessions is not None:
            runtime.sessions.end(program.program_id)

    def _resume(self, resume_key: str | None) -> ProgramState | None:
        """The program an interrupted run left under ``resume_key``, if any."""
        if resume_key is None or not self._suspended:
            return None
        with self._suspended_lock:
            program = self._suspended.pop(resume_key, None)
        if program is not None:
            with program.lock:
                program.dag.apply(RunResumed())
                program.interrupted_threads.clear()
        return program

    @staticmethod
    def _end_span(record: Record, error: BaseException | None) -> None:
        if record.cancelled or isinstance(error, CANCELLATIONS):
            record.span.set_attribute(protocol.ATTR_STATE, protocol.STATE_CANCELLED)
            record.span.end()
        elif error is not None:
            _mark(record.span, protocol.STATE_ERROR, error)
            record.span.end()
        else:
            end_ok(record.span)

    @staticmethod
    def _enter(record: Record) -> None:
        record.previous_program = current_program.get()
        current_program.set(record.program.program_id)

    @staticmethod
    def _leave(record: Record) -> None:
        if current_program.get() == record.program.program_id:
            current_program.set(record.previous_program)


def _mark(span: Span, state: str, error: BaseException) -> None:
    """Record a failure by the exception's class name only (messages may hold secrets)."""
    name = type(error).__name__
    span.set_attribute(protocol.ATTR_ERROR_KIND, name)
    span.set_attribute(protocol.ATTR_STATE, state)
    span.set_status(Status(StatusCode.ERROR, name))


def _start_span(
    runtime: Runtime,
    name: str,
    parent: Record | None,
    attributes: Callable[[], dict[str, AttributeValue]],
) -> Span:
    """Start a span under ``parent``'s; build its attributes only if it can be recorded (with
    no tracer provider configured, spans cost next to nothing). Under a recording parent they
    are given at start, so the SDK stores them in one pass."""
    if parent is None or not parent.span.get_span_context().is_valid:
        span = start_span(runtime.tracer, name)  # no context built that nobody reads
    else:
        context = parent.child_context
        if context is None:
            context = parent.child_context = trace.set_span_in_context(parent.span)
        if parent.span.is_recording():
            return runtime.tracer.start_span(name, context=context, attributes=attributes())
        span = runtime.tracer.start_span(name, context=context)
    if span.is_recording():
        span.set_attributes(attributes())
    return span
