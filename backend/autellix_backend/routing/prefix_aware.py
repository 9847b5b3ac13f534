"""Cache-aware routing in the style of SGLang's router.

Each engine has an approximate prefix tree of the KV blocks it was sent, kept as an LRU set
of chained block hashes (a chained hash names its whole prefix, so the set is the tree). A
call goes to the engine holding the longest prefix of its blocks, unless the load is
imbalanced (max - min > ``balance_abs_threshold`` and max > ``balance_rel_threshold`` * min)
or the best match covers less than ``cache_threshold`` of the prompt: then to the least-used
engine.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from autellix_backend.routing.base import Balancer, healthy, least_used
from autellix_backend.routing.types import EngineView, RouteRequest


class PrefixAwareBalancer(Balancer):
    """Approximate prefix matching with a load-imbalance fallback.

    Args:
        balance_abs_threshold: absolute load gap that counts as imbalance (SGLang: 64).
        balance_rel_threshold: relative load ratio that counts as imbalance (SGLang: 1.5).
        cache_threshold: minimum matched fraction of the prompt to follow the cache (0.5).
        max_blocks_per_engine: hashes remembered per engine (LRU), bounding memory.
    """

    uses_block_hashes = True

    def __init__(
        self,
        *,
        balance_abs_threshold: int = 64,
        balance_rel_threshold: float = 1.5,
        cache_threshold: float = 0.5,
        max_blocks_per_engine: int = 65_536,
    ) -> None:
        if max_blocks_per_engine < 1:
            raise ValueError("max_blocks_per_engine must be at least 1")
        self.balance_abs_threshold = balance_abs_threshold
        self.balance_rel_threshold = balance_rel_threshold
        self.cache_threshold = cache_threshold
        self.max_blocks_per_engine = max_blocks_per_engine
        self._trees: dict[str, OrderedDict[int, None]] = {}

    def choose(self, request: RouteRequest, engines: Sequence[EngineView]) -> str:
        alive = healthy(engines)
        loads = [e.num_calls for e in alive]
        hi, lo = max(loads), min(loads)
        imbalanced = hi - lo > self.balance_abs_threshold and hi > self.balance_rel_threshold * lo
        chosen: EngineView | None = None
        if not imbalanced and request.block_hashes:
            best, best_len = alive[0], -1
            for engine in alive:
                matched = self.match_length(engine.engine_id, request.block_hashes)
                if matched > best_len or (
                    matched == best_len and engine.num_calls < best.num_calls
                ):
                    best, best_len = engine, matched
            if best_len > 0 and best_len >= self.cache_threshold * len(request.block_hashes):
                chosen = best
        if chosen is None:
            chosen = least_used(alive)
        self._insert(chosen.engine_id, request.block_hashes)
        return chosen.engine_id

    def match_length(self, engine_id: str, block_hashes: Sequence[int]) -> int:
        """How many leading blocks of ``block_hashes`` the engine is believed to hold."""
        tree = self._trees.get(engine_id)
        if not tree:
            return 0
        matched = 0
        for h in block_hashes:
            if h not in tree:
                break
            matched += 1
        return matched

    def _insert(self, engine_id: str, block_hashes: Sequence[int]) -> None:
        tree = self._trees.setdefault(engine_id, OrderedDict())
        for h in reversed(block_hashes):  # the head most recent, so tails are evicted first
            tree[h] = None
            tree.move_to_end(h)
        while len(tree) > self.max_blocks_per_engine:
            tree.popitem(last=False)
