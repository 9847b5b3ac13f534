"""Balancers by name: the ``BalancerKind`` enum keys the ``BALANCERS`` factories."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from autellix_backend.core.registry import parse_kind
from autellix_backend.routing.base import Balancer
from autellix_backend.routing.cache_aware import CacheAwareBalancer
from autellix_backend.routing.least_used import LeastUsedBalancer
from autellix_backend.routing.locality import LocalityBalancer
from autellix_backend.routing.prefix_aware import PrefixAwareBalancer
from autellix_backend.routing.round_robin import RoundRobinBalancer
from autellix_backend.routing.types import UnknownBalancerError


class BalancerKind(StrEnum):
    """The load balancers Autellix ships."""

    ROUND_ROBIN = "round_robin"
    LEAST_USED = "least_used"
    LOCALITY = "locality"
    """Autellix: short calls to the least-used engine, long calls to their program's engine."""
    PREFIX_AWARE = "prefix_aware"
    """SGLang-style cache-aware routing with a load-imbalance fallback."""
    CACHE_AWARE = "cache_aware"
    """Longest prefix the engines report caching (KV events), ties by load; retained stay."""

    @classmethod
    def parse(cls, name: str | BalancerKind) -> BalancerKind:
        """The kind called ``name`` (case-insensitive, ``-`` or ``_``)."""
        return parse_kind(cls, name, what="balancer", error=UnknownBalancerError)


@dataclass(frozen=True, slots=True)
class BalancerOptions:
    """Settings of the balancers; each kind reads the ones it uses."""

    locality_threshold: int = 2048
    balance_abs_threshold: int = 64
    balance_rel_threshold: float = 1.5
    cache_threshold: float = 0.5
    max_blocks_per_engine: int = 65_536
    max_programs: int = 100_000
    max_load_gap: int = 2


BALANCERS: dict[BalancerKind, Callable[[BalancerOptions], Balancer]] = {
    BalancerKind.ROUND_ROBIN: lambda _: RoundRobinBalancer(),
    BalancerKind.LEAST_USED: lambda _: LeastUsedBalancer(),
    BalancerKind.LOCALITY: lambda o: LocalityBalancer(
        o.locality_threshold, max_programs=o.max_programs
    ),
    BalancerKind.PREFIX_AWARE: lambda o: PrefixAwareBalancer(
        balance_abs_threshold=o.balance_abs_threshold,
        balance_rel_threshold=o.balance_rel_threshold,
        cache_threshold=o.cache_threshold,
        max_blocks_per_engine=o.max_blocks_per_engine,
    ),
    BalancerKind.CACHE_AWARE: lambda o: CacheAwareBalancer(max_load_gap=o.max_load_gap),
}
"""Each balancer kind's factory."""


def make_balancer(
    kind: BalancerKind | str,
    *,
    locality_threshold: int = 2048,
    balance_abs_threshold: int = 64,
    balance_rel_threshold: float = 1.5,
    cache_threshold: float = 0.5,
    max_blocks_per_engine: int = 65_536,
    max_programs: int = 100_000,
    max_load_gap: int = 2,
) -> Balancer:
    """A new balancer of ``kind``; options not used by that kind are ignored.

    Raises:
        UnknownBalancerError: ``kind`` names no balancer.
    """
    options = BalancerOptions(
        locality_threshold=locality_threshold,
        balance_abs_threshold=balance_abs_threshold,
        balance_rel_threshold=balance_rel_threshold,
        cache_threshold=cache_threshold,
        max_blocks_per_engine=max_blocks_per_engine,
        max_programs=max_programs,
        max_load_gap=max_load_gap,
    )
    return BALANCERS[BalancerKind.parse(kind)](options)
