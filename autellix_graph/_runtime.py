"""What an active handler talks to: its settings, tracer and session client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from opentelemetry import trace

from autellix_graph._sessions import SessionClient
from autellix_graph._settings import Settings
from autellix_graph._tracing import make_tracer

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider


@dataclass(frozen=True, slots=True)
class Runtime:
    """The resources behind one active handler."""

    settings: Settings
    tracer: trace.Tracer
    owned_provider: TracerProvider | None
    """A provider the middleware made (to export to ``traces_endpoint``); None if borrowed."""
    sessions: SessionClient | None
    """Background session client; None without a backend or with ``sessions=False``."""

    @classmethod
    def build(cls, settings: Settings, tracer_provider: trace.TracerProvider | None) -> Runtime:
        tracer, owned = make_tracer(settings, tracer_provider)
        root = settings.service_root
        sessions = None
        if settings.sessions and root is not None:
            flush = getattr(owned or tracer_provider, "force_flush", None)
            sessions = SessionClient(
                root, api_key=settings.api_key, timeout=settings.timeout, before_end=flush
            )
        return cls(settings, tracer, owned, sessions)

    def flush(self, timeout: float = 5.0) -> bool:
        """Send pending session calls and export pending spans; False on timeout."""
        ok = True if self.sessions is None else self.sessions.flush(timeout)
        if self.owned_provider is not None:
            ok = self.owned_provider.force_flush(int(timeout * 1000)) and ok
        return ok

    def close(self) -> None:
        if self.sessions is not None:
            self.sessions.close()
        if self.owned_provider is not None:
            self.owned_provider.shutdown()
