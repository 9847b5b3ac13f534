"""Least-used: the engine with the fewest LLM calls."""

from __future__ import annotations

from collections.abc import Sequence

from autellix_backend.routing.base import Balancer, least_used
from autellix_backend.routing.types import EngineView, RouteRequest


class LeastUsedBalancer(Balancer):
    """Sends every call to the healthy engine with the fewest calls."""

    def choose(self, request: RouteRequest, engines: Sequence[EngineView]) -> str:
        return least_used(engines).engine_id
