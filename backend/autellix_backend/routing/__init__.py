"""Load balancing of LLM calls across engines (no I/O: used by the simulator and the gateway).

>>> from autellix_backend.routing import EngineView, RouteRequest, make_balancer
>>> balancer = make_balancer("locality")
>>> engines = [EngineView("e0", num_calls=3), EngineView("e1", num_calls=1)]
>>> balancer.choose(RouteRequest("p1", prompt_tokens=100), engines)
'e1'
"""

from __future__ import annotations

from autellix_backend.routing.base import Balancer
from autellix_backend.routing.cache_aware import CacheAwareBalancer
from autellix_backend.routing.least_used import LeastUsedBalancer
from autellix_backend.routing.locality import LocalityBalancer
from autellix_backend.routing.prefix_aware import PrefixAwareBalancer
from autellix_backend.routing.registry import BalancerKind, make_balancer
from autellix_backend.routing.round_robin import RoundRobinBalancer
from autellix_backend.routing.types import (
    EngineView,
    NoHealthyEngineError,
    RouteRequest,
    UnknownBalancerError,
)

__all__ = [
    "Balancer",
    "BalancerKind",
    "CacheAwareBalancer",
    "EngineView",
    "LeastUsedBalancer",
    "LocalityBalancer",
    "NoHealthyEngineError",
    "PrefixAwareBalancer",
    "RoundRobinBalancer",
    "RouteRequest",
    "UnknownBalancerError",
    "make_balancer",
]
