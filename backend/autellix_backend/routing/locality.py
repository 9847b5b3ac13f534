"""Autellix's locality-aware rule: short calls to the least-used engine, long calls stay home.

A call of at most ``threshold`` prompt tokens mostly shares only a system prompt with other
calls, so any engine serves it nearly as well: it goes to the least-used engine. A longer
call carries its program's own history, which lives in one engine's prefix cache: it goes to
the engine its program is pinned to, and a program with no pinned engine (or whose engine is
unhealthy) is pinned to the least-used engine now.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from autellix_backend.routing.base import Balancer, healthy, least_used
from autellix_backend.routing.types import EngineView, RouteRequest


class LocalityBalancer(Balancer):
    """The paper's balancer.

    Args:
        threshold: prompt tokens above which a call follows its program's pin (paper: 2048).
        max_programs: pins kept at most; the least recently used pin is forgotten first.
    """

    def __init__(self, threshold: int = 2048, *, max_programs: int = 100_000) -> None:
        if threshold < 0 or max_programs < 1:
            raise ValueError("threshold must be >= 0 and max_programs >= 1")
        self.threshold = threshold
        self.max_programs = max_programs
        self._pins: OrderedDict[str, str] = OrderedDict()

    def choose(self, request: RouteRequest, engines: Sequence[EngineView]) -> str:
        if request.prompt_tokens <= self.threshold:
            return least_used(engines).engine_id
        pinned = self._pins.get(request.program_id)
        if pinned is not None and any(e.engine_id == pinned for e in healthy(engines)):
            self._pins.move_to_end(request.program_id)
            return pinned
        engine_id = least_used(engines).engine_id
        self._pins[request.program_id] = engine_id
        self._pins.move_to_end(request.program_id)
        while len(self._pins) > self.max_programs:
            self._pins.popitem(last=False)
        return engine_id

    def pinned(self, program_id: str) -> str | None:
        """The engine ``program_id`` is pinned to, if any."""
        return self._pins.get(program_id)

    def on_program_finished(self, program_id: str) -> None:
        self._pins.pop(program_id, None)
