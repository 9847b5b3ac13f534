"""Balancers by name: an enum feeds a factory."""

from __future__ import annotations

from enum import StrEnum

from autellix_backend.routing.base import Balancer
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

    @classmethod
    def parse(cls, name: str | BalancerKind) -> BalancerKind:
        """The kind called ``name`` (case-insensitive, ``-`` or ``_``)."""
        if isinstance(name, BalancerKind):
            return name
        key = str(name).strip().lower().replace("-", "_")
        for kind in cls:
            if kind.value == key:
                return kind
        known = ", ".join(k.value for k in cls)
        raise UnknownBalancerError(f"unknown balancer {name!r}; known balancers: {known}")


def make_balancer(
    kind: BalancerKind | str,
    *,
    locality_threshold: int = 2048,
    balance_abs_threshold: int = 64,
    balance_rel_threshold: float = 1.5,
    cache_threshold: float = 0.5,
    max_blocks_per_engine: int = 65_536,
    max_programs: int = 100_000,
) -> Balancer:
    """A new balancer of ``kind``; options not used by that kind are ignored.

    Raises:
        UnknownBalancerError: ``kind`` names no balancer.
    """
    match BalancerKind.parse(kind):
        case BalancerKind.ROUND_ROBIN:
            return RoundRobinBalancer()
        case BalancerKind.LEAST_USED:
            return LeastUsedBalancer()
        case BalancerKind.LOCALITY:
            return LocalityBalancer(locality_threshold, max_programs=max_programs)
        case BalancerKind.PREFIX_AWARE:
            return PrefixAwareBalancer(
                balance_abs_threshold=balance_abs_threshold,
                balance_rel_threshold=balance_rel_threshold,
                cache_threshold=cache_threshold,
                max_blocks_per_engine=max_blocks_per_engine,
            )
