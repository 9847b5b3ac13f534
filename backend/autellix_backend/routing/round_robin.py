"""Round-robin: engines take turns, whatever their load."""

from __future__ import annotations

from collections.abc import Sequence

from autellix_backend.routing.base import Balancer, healthy
from autellix_backend.routing.types import EngineView, RouteRequest


class RoundRobinBalancer(Balancer):
    """Cycles through the healthy engines."""

    def __init__(self) -> None:
        self._next = 0

    def choose(self, request: RouteRequest, engines: Sequence[EngineView]) -> str:
        alive = healthy(engines)
        engine = alive[self._next % len(alive)]
        self._next = (self._next + 1) % len(alive)
        return engine.engine_id
