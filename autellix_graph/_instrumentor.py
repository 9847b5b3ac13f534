"""Process-wide attachment: one handler added to every LangChain/LangGraph run.

langchain-core consults registered context variables each time it configures callbacks; ours
has the global handler as its default value, so every thread and task sees it without the app
passing anything. Uninstrumenting deactivates the handler (its hooks are then skipped).
"""

from __future__ import annotations

import logging
import threading
from contextvars import ContextVar
from typing import Any

from langchain_core.tracers.context import register_configure_hook
from opentelemetry import trace

from autellix_graph._handler import AutellixCallbackHandler
from autellix_graph._runtime import Runtime
from autellix_graph._settings import Settings

_log = logging.getLogger(__name__)

_global_handler = AutellixCallbackHandler._inactive()
_handler_var: ContextVar[AutellixCallbackHandler | None] = ContextVar(
    "autellix_graph_handler", default=_global_handler
)


class AutellixInstrumentor:
    """Attaches Autellix to every LangGraph run in the process, in the OpenTelemetry
    instrumentor mould: a singleton whose ``instrument()`` / ``uninstrument()`` are idempotent.

    >>> AutellixInstrumentor().instrument(base_url="http://127.0.0.1:8000")  # doctest: +SKIP
    """

    _instance: AutellixInstrumentor | None = None
    _lock = threading.Lock()
    _hook_registered = False

    def __new__(cls) -> AutellixInstrumentor:
        with cls._lock:
            if cls._instance is None:
                cls._instance = super().__new__(cls)
            return cls._instance

    @property
    def is_instrumented(self) -> bool:
        return _global_handler.settings is not None

    @property
    def handler(self) -> AutellixCallbackHandler:
        """The process-wide handler (inactive unless instrumented)."""
        return _global_handler

    def instrument(
        self, *, tracer_provider: trace.TracerProvider | None = None, **settings: Any
    ) -> None:
        """Attach with ``settings`` (see :class:`Settings`); a second call is a no-op."""
        with self._lock:
            if self.is_instrumented:
                _log.warning("autellix_graph is already instrumented; call uninstrument() first")
                return
            resolved = Settings.from_env(**settings)
            if resolved.disabled:
                return
            if not AutellixInstrumentor._hook_registered:
                register_configure_hook(_handler_var, inheritable=True)
                AutellixInstrumentor._hook_registered = True
            _global_handler._activate(Runtime.build(resolved, tracer_provider))

    def uninstrument(self) -> None:
        """Detach: flush what is pending, then stop tracing and tagging. No-op if detached."""
        with self._lock:
            previous = _global_handler._activate(None)
        if previous is not None:
            previous.close()

    def force_flush(self, timeout: float = 5.0) -> bool:
        """Export pending spans and send pending session calls; False on timeout."""
        return _global_handler.force_flush(timeout)


def instrument(*, tracer_provider: trace.TracerProvider | None = None, **settings: Any) -> None:
    """Attach Autellix to every LangGraph run in this process, with no change to the app.

    Keyword arguments are :class:`Settings` fields (``base_url``, ``api_key``,
    ``otlp_endpoint``, ``sessions``, ``timeout``); unset ones come from ``AUTELLIX_*``
    environment variables. Idempotent.

    >>> import autellix_graph
    >>> autellix_graph.instrument(base_url="http://127.0.0.1:8000")  # doctest: +SKIP
    """
    AutellixInstrumentor().instrument(tracer_provider=tracer_provider, **settings)


def uninstrument() -> None:
    """Undo :func:`instrument` (flushing pending spans and session calls first)."""
    AutellixInstrumentor().uninstrument()


def force_flush(timeout: float = 5.0) -> bool:
    """Export pending spans and send pending session calls now; False on timeout."""
    return AutellixInstrumentor().force_flush(timeout)
