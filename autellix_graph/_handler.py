"""The LangChain callback handler that turns LangGraph runs into programs, DAGs and spans.

A thin translator: it reads LangChain's callback arguments (run ids, LangGraph's task
metadata) and hands them to a :class:`~autellix_graph.ProgramRecorder`, which keeps the DAG,
spans, sessions and the call in flight. Every hook is cheap, does no I/O on the caller's
thread and never raises into the app: a failure is logged and the run goes on untraced.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from opentelemetry import trace

from autellix_graph import _langchain_calls as lc
from autellix_graph import protocol
from autellix_graph._attributes import Message, to_json
from autellix_graph._hooks import guarded
from autellix_graph._recorder import ProgramRecorder, Record, RecordKind
from autellix_graph._runtime import Runtime
from autellix_graph._settings import Settings

if TYPE_CHECKING:
    from langchain_core.outputs import LLMResult

_INTERRUPTS = frozenset({"GraphInterrupt", "NodeInterrupt"})
_BUBBLE_UPS = frozenset({"GraphBubbleUp", "ParentCommand", *_INTERRUPTS})
"""LangGraph's control-flow exceptions: a run that raises one did not fail."""
_MAX_ID_LENGTH = 200
_UNSAFE_ID_CHARS = re.compile(r"[^\x21-\x2b\x2d-\x7e]")
_SAFE_PUNCTUATION = "!\"#$&'()*+-./:;<=>?@[\\]^_`{|}~"

_root_owners: dict[UUID, AutellixCallbackHandler] = {}
"""Root run id -> the handler tracing it, so an explicit handler and the global one never
trace the same run twice (the explicit one sees the root first)."""


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


def _error(error: BaseException) -> BaseException | None:
    """The error a run ended with, or None for LangGraph's control-flow exceptions."""
    return None if type(error).__name__ in _BUBBLE_UPS else error


class AutellixCallbackHandler(BaseCallbackHandler):
    """Builds each LangGraph run's program DAG, emits its spans and tags its LLM calls.

    Pass it per run, or let :func:`autellix_graph.instrument` attach one to every run:

    >>> handler = AutellixCallbackHandler(base_url="http://127.0.0.1:8000")  # doctest: +SKIP
    >>> graph.invoke(inputs, config={"callbacks": [handler]})  # doctest: +SKIP

    Keyword arguments are those of :class:`autellix_graph.Settings` (``base_url``,
    ``api_key``, ``otlp_endpoint``, ``project_name``, ``capture_content``, ``sessions``,
    ``timeout``), defaulting to ``AUTELLIX_*`` environment variables, plus an optional
    OpenTelemetry ``tracer_provider``.
    """

    run_inline = True
    """Hooks run in the caller's context: that is how the current call reaches httpx."""
    raise_error = False

    # Events LangChain need not send us (plain attributes: read on every event).
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True
    # While inactive (the global handler before ``instrument()`` or after ``uninstrument()``,
    # when langchain-core still attaches it to every run) it asks for no event at all.
    ignore_chain = False
    ignore_llm = False
    ignore_chat_model = False
    ignore_agent = False
    """Also tools' events."""

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        settings: Settings | None = None,
        **setting_overrides: Any,
    ) -> None:
        super().__init__()
        if settings is None:
            settings = Settings.from_env(**setting_overrides)
        runtime = None if settings.disabled else Runtime.build(settings, tracer_provider)
        self.recorder = ProgramRecorder(runtime)
        """Where this handler's programs are recorded."""
        self._listen()

    @classmethod
    def _inactive(cls) -> AutellixCallbackHandler:
        """A handler that ignores everything until activated (for the global hook)."""
        return cls(settings=Settings(disabled=True))

    @property
    def settings(self) -> Settings | None:
        """The settings in force, or None while inactive."""
        return self.recorder.settings

    def _captures_content(self) -> bool:
        """Whether messages go on spans (else they are not even converted: a long history
        would cost every call)."""
        settings = self.recorder.settings
        return settings is not None and settings.capture_content

    def attach(self, tracer_provider: trace.TracerProvider | None = None, **settings: Any) -> bool:
        """Activate (see :meth:`ProgramRecorder.attach`); False, and nothing attached, when
        disabled."""
        attached = self.recorder.attach(tracer_provider, **settings)
        self._listen()
        return attached

    def force_flush(self, timeout: float = 5.0) -> bool:
        """Export pending spans and send pending session calls; False on timeout."""
        return self.recorder.force_flush(timeout)

    def close(self) -> None:
        """Flush, then release the exporter and the session client this handler owns; the
        handler then asks LangChain for no more events."""
        self.recorder.close()
        self._listen()

    def _listen(self) -> None:
        """Ask LangChain for the events we trace only while a runtime is active."""
        inactive = self.recorder.runtime is None
        self.ignore_chain = self.ignore_llm = inactive
        self.ignore_chat_model = self.ignore_agent = inactive

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
        if parent_run_id is None:
            self._start_program(run_id, metadata or {}, kwargs.get("name"), inputs)
            return
        parent = self.recorder.get(parent_run_id)
        if parent is None:
            return
        namespace = _namespace(metadata)
        if namespace is None or namespace == parent.thread_id or parent.kind >= RecordKind.LLM:
            self.recorder.alias(run_id, parent)
            return
        assert metadata is not None
        node_name = str(metadata.get("langgraph_node") or kwargs.get("name") or "node")
        step = int(metadata.get("langgraph_step", 0))
        thread = self.recorder.start_thread(run_id, parent, namespace, node_name, step)
        if thread is not None:
            self.recorder.capture(thread, inputs, output=False)

    @guarded
    def on_chain_end(self, outputs: Any, *, run_id: UUID, **kwargs: Any) -> None:
        _root_owners.pop(run_id, None)
        self.recorder.end(run_id, None, outputs)

    @guarded
    def on_chain_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        _root_owners.pop(run_id, None)
        record = self.recorder.get(run_id)
        if record is None or record.key != run_id:
            self.recorder.pop(run_id)
            return
        if type(error).__name__ in _INTERRUPTS and record.kind is RecordKind.THREAD:
            self.recorder.interrupt(record)
        self.recorder.end(run_id, _error(error))

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
        content = lc.chat_messages(messages) if self._captures_content() else ()
        self._start_call(run_id, parent_run_id, metadata, kwargs, serialized, content)

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
        content = lc.prompt_messages(prompts) if self._captures_content() else ()
        self._start_call(run_id, parent_run_id, metadata, kwargs, serialized, content)

    @guarded
    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        _root_owners.pop(run_id, None)
        # The response is read only onto a recorded span: converting it costs every call.
        record = self.recorder.get(run_id)
        recorded = record is not None and record.span.is_recording()
        reply = lc.llm_response(response, messages=self._captures_content()) if recorded else None
        self.recorder.end_call(run_id, reply)

    @guarded
    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        _root_owners.pop(run_id, None)
        self.recorder.end_call(run_id, None, error)

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
        parent = self.recorder.get(parent_run_id) if parent_run_id is not None else None
        if parent is None:
            return
        name = (serialized or {}).get("name") or kwargs.get("name") or "tool"
        arguments = kwargs.get("inputs")
        text = input_str if arguments is None else to_json(arguments)
        thread_id = _namespace(metadata) or parent.thread_id
        self.recorder.start_tool(run_id, parent, thread_id, str(name), str(text))

    @guarded
    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self.recorder.end(run_id, None, getattr(output, "content", output))

    @guarded
    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self.recorder.end(run_id, error)

    # Internals ------------------------------------------------------------------------------

    def _start_program(
        self, run_id: UUID, metadata: Mapping[str, Any], name: str | None, inputs: Any = None
    ) -> Record | None:
        if self.recorder.runtime is None or _root_owners.setdefault(run_id, self) is not self:
            return None
        thread_key = metadata.get("thread_id")
        program_id = metadata.get(protocol.PROGRAM_ID_METADATA_KEY)
        record = self.recorder.start_program(
            run_id,
            name or "program",
            program_id=None if program_id is None else str(program_id),
            session_id=lc.session_id(metadata),
            resume_key=None if thread_key is None else str(thread_key),
            inputs=inputs,
        )
        if record is None:
            _root_owners.pop(run_id, None)
        return record

    def _start_call(
        self,
        run_id: UUID,
        parent_run_id: UUID | None,
        metadata: dict[str, Any] | None,
        kwargs: Mapping[str, Any],
        serialized: Mapping[str, Any] | None,
        messages: tuple[Message, ...],
    ) -> None:
        if parent_run_id is None:
            parent = self._start_program(run_id, metadata or {}, kwargs.get("name"))
            owns_program = True
        else:
            parent = self.recorder.get(parent_run_id)
            owns_program = False
        if parent is None:
            return
        request = lc.llm_request(serialized, metadata, kwargs.get("invocation_params"), messages)
        thread_id = _namespace(metadata) or parent.thread_id
        self.recorder.start_call(run_id, parent, thread_id, request, owns_program=owns_program)
