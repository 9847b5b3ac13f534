"""Autellix for LlamaIndex Workflows: program DAGs, OpenTelemetry spans and tagged LLM calls.

>>> from autellix_integrations import llamaindex
>>> llamaindex.instrument(base_url="http://127.0.0.1:8000")  # doctest: +SKIP
>>> llm = llamaindex.openai_like(max_tokens=256)  # doctest: +SKIP

Attaches a span handler and an event handler to LlamaIndex's root instrumentation dispatcher
(and reports ``ctx.send_event`` / ``ctx.collect_events``), so every ``Workflow.run`` in the
process becomes a program, recorded by the same ``autellix_graph.ProgramRecorder`` as
LangGraph runs. Name a run's program with ``workflow.run(autellix_program_id=...)``; read it
inside a step with ``autellix_graph.current_program_id()``. Needs the ``llamaindex`` extra.
See ``docs/llamaindex.md``.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from autellix_integrations.llamaindex._flow import patch_context
from autellix_integrations.llamaindex._handlers import (
    AutellixEventHandler,
    AutellixSpanHandler,
    LlamaIndexState,
)
from autellix_integrations.llamaindex._llm import openai_like

__all__ = [
    "AutellixEventHandler",
    "AutellixLlamaIndexInstrumentor",
    "AutellixSpanHandler",
    "force_flush",
    "instrument",
    "openai_like",
    "uninstrument",
]

_state = LlamaIndexState()


class AutellixLlamaIndexInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Attaches Autellix to every LlamaIndex Workflow run, in OpenTelemetry's
    ``BaseInstrumentor`` mould (entry point ``autellix_llamaindex``, so
    ``opentelemetry-instrument`` attaches it too)."""

    _lock = threading.Lock()
    _attached = False

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("llama-index-core >= 0.14.3",)

    def instrument(self, **kwargs: Any) -> None:
        """Attach; with ``disabled`` set, attach nothing and stay free to attach later."""
        super().instrument(**kwargs)
        if _state.recorder.runtime is None:
            self._is_instrumented_by_opentelemetry = False

    def _instrument(self, **kwargs: Any) -> None:
        tracer_provider: trace.TracerProvider | None = kwargs.pop("tracer_provider", None)
        for name in ("meter_provider", "logger_provider", "event_logger_provider"):
            kwargs.pop(name, None)
        with self._lock:
            if not _state.recorder.attach(tracer_provider, **kwargs):
                return
            if not AutellixLlamaIndexInstrumentor._attached:
                from llama_index.core.instrumentation import get_dispatcher  # type: ignore[attr-defined]

                dispatcher = get_dispatcher()
                dispatcher.add_span_handler(AutellixSpanHandler.bound_to(_state))
                dispatcher.add_event_handler(AutellixEventHandler.bound_to(_state))
                patch_context(_state.active)
                AutellixLlamaIndexInstrumentor._attached = True

    def _uninstrument(self, **kwargs: Any) -> None:
        """Flush, then stop tracing and tagging (the handlers stay registered, inactive)."""
        _state.recorder.close()


def instrument(*, tracer_provider: trace.TracerProvider | None = None, **settings: Any) -> None:
    """Attach to every LlamaIndex Workflow run in the process; a second call is a no-op.

    Keyword arguments are ``autellix_graph.Settings`` fields, defaulting to ``AUTELLIX_*``
    environment variables.
    """
    instrumentor = AutellixLlamaIndexInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(tracer_provider=tracer_provider, **settings)


def uninstrument() -> None:
    """Flush, then stop tracing and tagging."""
    instrumentor = AutellixLlamaIndexInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


def force_flush(timeout: float = 5.0) -> bool:
    """Export pending spans and send pending session calls; False on timeout."""
    return _state.recorder.force_flush(timeout)
