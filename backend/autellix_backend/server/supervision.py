"""What the engine pool's supervisor knows about an engine: its life-cycle state, the restart
backoff, and the two optional adapter hooks it uses (a cheap death check and a restart).

An engine that fails leaves rotation; the pool then probes it at every health interval, and
an adapter that can restart itself (the in-process vLLM engine) is restarted with exponential
backoff until a probe passes. A remote engine cannot be restarted from here, so it rejoins
when its probe passes again.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable


class EngineState(StrEnum):
    """Where an engine is in its life cycle, as ``/healthz`` and ``/metrics`` show it."""

    STARTING = "starting"
    """Being started with the service; not in rotation yet."""
    HEALTHY = "healthy"
    """In rotation."""
    FAILED = "failed"
    """Out of rotation; probed, and restarted when the backoff allows."""
    RESTARTING = "restarting"
    """Out of rotation while a fresh engine is built in its place."""
    STOPPED = "stopped"
    """Closed with the service."""


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    """How the pool brings back a failed engine."""

    backoff_s: float = 1.0
    """Wait between a failure and the first restart."""
    backoff_max_s: float = 60.0
    """The wait doubles after each restart that does not bring the engine back, up to this.
    An engine that stayed up this long starts again from ``backoff_s`` when it next fails."""
    start_timeout_s: float = 900.0
    """A restart that takes longer than this counts as failed (loading weights is slow)."""
    watch_interval_s: float = 0.5
    """How often engines that can tell without I/O are asked whether they died."""

    def __post_init__(self) -> None:
        if not 0 < self.backoff_s <= self.backoff_max_s:
            raise ValueError("need 0 < backoff_s <= backoff_max_s")
        if self.start_timeout_s <= 0 or self.watch_interval_s <= 0:
            raise ValueError("start_timeout_s and watch_interval_s must be positive")

    def delay(self, num_attempts: int) -> float:
        """Seconds to wait before restart number ``num_attempts + 1`` of one outage."""
        return float(min(self.backoff_max_s, self.backoff_s * 2 ** min(num_attempts, 32)))


@runtime_checkable
class ReportsFailure(Protocol):
    """An adapter that knows, without I/O, that its engine died (e.g. a child process exited)."""

    def failure(self) -> str | None:
        """Why the engine is dead, or None while it lives. Must be cheap and never raise."""


@runtime_checkable
class Restartable(Protocol):
    """An adapter that can replace its dead engine with a fresh one of the same settings."""

    async def restart(self) -> None:
        """Release what is left of the engine and start a new one; raise if it cannot start."""
