"""The interface every load balancer implements, and helpers they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from autellix_backend.routing.types import EngineView, NoHealthyEngineError, RouteRequest


class Balancer(ABC):
    """Chooses the engine for each LLM call. No I/O; safe to call from an event loop."""

    uses_block_hashes: bool = False
    """Whether ``choose`` reads ``RouteRequest.block_hashes`` (callers may skip hashing)."""
    uses_kv_events: bool = False
    """Whether the balancer wants the engines' KV events (``on_kv_event``)."""

    @abstractmethod
    def choose(self, request: RouteRequest, engines: Sequence[EngineView]) -> str:
        """The id of the engine that serves ``request``.

        Raises:
            NoHealthyEngineError: no engine in ``engines`` is healthy.
        """

    def on_program_finished(self, program_id: str) -> None:
        """Forget per-program state when a program's session ends."""
        return None

    def on_kv_event(self, engine_id: str, stored: Sequence[int], removed: Sequence[int]) -> None:
        """Hear that an engine cached (``stored``) or evicted (``removed``) block hashes.

        The engines' KV events (vLLM's ``BlockStored`` / ``BlockRemoved``); only balancers
        that set ``uses_kv_events`` need them.
        """
        return None


def healthy(engines: Sequence[EngineView]) -> list[EngineView]:
    """The healthy engines, in the given order; raises if there is none."""
    alive = [e for e in engines if e.healthy]
    if not alive:
        raise NoHealthyEngineError("no healthy engine to route to")
    return alive


def least_used(engines: Sequence[EngineView]) -> EngineView:
    """The healthy engine with the fewest calls (the first one on ties)."""
    return min(healthy(engines), key=lambda e: e.num_calls)
