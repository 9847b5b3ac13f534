"""Process-wide attachment: one handler added to every LangChain/LangGraph run.

:class:`AutellixInstrumentor` follows OpenTelemetry's ``BaseInstrumentor`` contract (a
singleton whose ``instrument()`` / ``uninstrument()`` guard against double calls and delegate
to ``_instrument`` / ``_uninstrument``) and is registered as the ``autellix_graph``
``opentelemetry_instrumentor`` entry point, so ``opentelemetry-instrument python app.py``
attaches it with no change to the app (settings then come from ``AUTELLIX_*`` variables).

langchain-core consults registered context variables each time it configures callbacks; ours
has the global handler as its default value, so every thread and task sees it without the app
passing anything. Uninstrumenting deactivates the handler (its hooks are then skipped).
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from contextvars import ContextVar
from typing import Any

from langchain_core.tracers.context import register_configure_hook
from opentelemetry import trace
from opentelemetry.instrumentation.instrumentor import (  # type: ignore[attr-defined]
    BaseInstrumentor,
)

from autellix_graph._handler import AutellixCallbackHandler

_OTEL_PROVIDER_KWARGS = ("meter_provider", "logger_provider", "event_logger_provider")
"""Keyword arguments distros may pass every instrumentor; the middleware has no use for them."""

_global_handler = AutellixCallbackHandler._inactive()
_handler_var: ContextVar[AutellixCallbackHandler | None] = ContextVar(
    "autellix_graph_handler", default=_global_handler
)


class AutellixInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    """Attaches Autellix to every LangGraph run in the process.

    >>> AutellixInstrumentor().instrument(base_url="http://127.0.0.1:8000")  # doctest: +SKIP

    ``instrument()`` takes an optional ``tracer_provider`` and :class:`Settings` fields;
    a second call warns and does nothing until ``uninstrument()``.
    """

    _lock = threading.Lock()
    _hook_registered = False

    def instrumentation_dependencies(self) -> Collection[str]:
        return ("langchain-core >= 0.3", "langgraph >= 0.2")

    @property
    def is_instrumented(self) -> bool:
        """Whether runs are being traced now."""
        return _global_handler.settings is not None

    @property
    def handler(self) -> AutellixCallbackHandler:
        """The process-wide handler (inactive unless instrumented)."""
        return _global_handler

    def instrument(self, **kwargs: Any) -> None:
        """Attach (see the class docstring); with ``disabled`` set, attach nothing and stay
        free to be instrumented later."""
        super().instrument(**kwargs)
        if not self.is_instrumented:
            self._is_instrumented_by_opentelemetry = False

    def _instrument(self, **kwargs: Any) -> None:
        tracer_provider: trace.TracerProvider | None = kwargs.pop("tracer_provider", None)
        for name in _OTEL_PROVIDER_KWARGS:
            kwargs.pop(name, None)
        with self._lock:
            if not _global_handler.attach(tracer_provider, **kwargs):
                return
            if not AutellixInstrumentor._hook_registered:
                register_configure_hook(_handler_var, inheritable=True)
                AutellixInstrumentor._hook_registered = True

    def _uninstrument(self, **kwargs: Any) -> None:
        """Flush what is pending, then stop tracing and tagging."""
        _global_handler.close()

    def force_flush(self, timeout: float = 5.0) -> bool:
        """Export pending spans and send pending session calls; False on timeout."""
        return _global_handler.force_flush(timeout)


def instrument(*, tracer_provider: trace.TracerProvider | None = None, **settings: Any) -> None:
    """Attach Autellix to every LangGraph run in this process, with no change to the app.

    Keyword arguments are :class:`Settings` fields (``base_url``, ``api_key``,
    ``otlp_endpoint``, ``project_name``, ``capture_content``, ``sessions``, ``timeout``); unset
    ones come from ``AUTELLIX_*`` environment variables. Idempotent.

    >>> import autellix_graph
    >>> autellix_graph.instrument(base_url="http://127.0.0.1:8000")  # doctest: +SKIP
    """
    AutellixInstrumentor().instrument(tracer_provider=tracer_provider, **settings)


def uninstrument() -> None:
    """Undo :func:`instrument` (flushing pending spans and session calls first)."""
    instrumentor = AutellixInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()


def force_flush(timeout: float = 5.0) -> bool:
    """Export pending spans and send pending session calls now; False on timeout."""
    return AutellixInstrumentor().force_flush(timeout)
