"""Cache-aware routing from what the engines report they cache, not from a guess.

Each engine's prefix cache is mirrored from its KV events (vLLM publishes ``BlockStored``
and ``BlockRemoved`` with chained block hashes; the simulator's KV cache raises the same).
A chained hash names its whole prefix, so the longest cached prefix of a call is the number
of its leading block hashes the engine holds. A call goes to the engine with the longest
one, ties broken by load, among the engines whose load is within ``max_load_gap`` calls of
the least loaded (bounded loads: without it, every program sharing a popular prefix piles
onto the one engine that cached it first). A program whose KV an engine retains through a
tool call goes to that engine (the retention would be wasted anywhere else).
"""

from __future__ import annotations

from collections.abc import Sequence

from autellix_backend.routing.base import Balancer, healthy
from autellix_backend.routing.types import EngineView, RouteRequest


class CacheAwareBalancer(Balancer):
    """Longest reported cached prefix first, then fewest calls; retained programs stay put.

    Args:
        max_load_gap: calls an engine may have above the least loaded one and still be chosen
            for its cache.
    """

    uses_block_hashes = True
    uses_kv_events = True

    def __init__(self, *, max_load_gap: int = 2) -> None:
        if max_load_gap < 0:
            raise ValueError("max_load_gap must be >= 0")
        self.max_load_gap = max_load_gap
        self._cached: dict[str, set[int]] = {}

    def choose(self, request: RouteRequest, engines: Sequence[EngineView]) -> str:
        alive = healthy(engines)
        for engine in alive:
            if request.program_id in engine.retained_program_ids:
                return engine.engine_id
        bound = min(e.num_calls for e in alive) + self.max_load_gap
        best = min(
            (e for e in alive if e.num_calls <= bound),
            key=lambda e: (-self.match_length(e.engine_id, request.block_hashes), e.num_calls),
        )
        return best.engine_id

    def match_length(self, engine_id: str, block_hashes: Sequence[int]) -> int:
        """How many leading blocks of ``block_hashes`` the engine reports it caches."""
        cached = self._cached.get(engine_id)
        if not cached:
            return 0
        matched = 0
        for h in block_hashes:
            if h not in cached:
                break
            matched += 1
        return matched

    def on_kv_event(self, engine_id: str, stored: Sequence[int], removed: Sequence[int]) -> None:
        cached = self._cached.setdefault(engine_id, set())
        cached.update(stored)
        cached.difference_update(removed)
