"""Autellix for LlamaIndex Workflows: program DAGs, OpenTelemetry spans and tagged LLM calls.

>>> from autellix_integrations import llamaindex
>>> llamaindex.instrument(base_url="http://127.0.0.1:8000")  # doctest: +SKIP

Attaches a span handler and an event handler to LlamaIndex's root instrumentation dispatcher,
so every ``Workflow.run`` in the process becomes a program. Give the LLM an httpx client from
``autellix_graph.http_client()`` / ``async_http_client()`` (e.g. ``OpenAILike(...,
http_client=...)``) and its requests carry the call's program, thread and parent ids. Needs
``llama-index-core`` (the ``llamaindex`` extra).
"""

from __future__ import annotations

import threading
from typing import Any

from opentelemetry import trace

from autellix_graph._runtime import Runtime
from autellix_graph._settings import Settings
from autellix_integrations.llamaindex._handlers import (
    AutellixEventHandler,
    AutellixSpanHandler,
    _State,
)

__all__ = ["AutellixEventHandler", "AutellixSpanHandler", "instrument", "uninstrument"]

_state = _State()
_lock = threading.Lock()
_attached = False


def instrument(*, tracer_provider: trace.TracerProvider | None = None, **settings: Any) -> None:
    """Attach to every LlamaIndex Workflow run in the process; a second call is a no-op.

    Keyword arguments are ``autellix_graph.Settings`` fields, defaulting to ``AUTELLIX_*``
    environment variables.
    """
    global _attached
    with _lock:
        if _state.runtime is not None:
            return
        resolved = Settings.from_env(**settings)
        if resolved.disabled:
            return
        if not _attached:
            from llama_index.core.instrumentation import get_dispatcher

            dispatcher = get_dispatcher()
            dispatcher.add_span_handler(AutellixSpanHandler(_state))
            dispatcher.add_event_handler(AutellixEventHandler(_state))
            _attached = True
        _state.runtime = Runtime.build(resolved, tracer_provider)


def uninstrument() -> None:
    """Stop tracing and tagging (the handlers stay registered but do nothing)."""
    with _lock:
        runtime, _state.runtime = _state.runtime, None
    if runtime is not None:
        runtime.close()


def force_flush(timeout: float = 5.0) -> bool:
    """Export pending spans and send pending session calls; False on timeout."""
    runtime = _state.runtime
    return True if runtime is None else runtime.flush(timeout)
