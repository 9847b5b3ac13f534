"""Values a balancer reads: the call to place and the engines it may go to."""

from __future__ import annotations

from dataclasses import dataclass

from autellix_backend.core import AutellixError


class UnknownBalancerError(AutellixError, ValueError):
    """A balancer name that no registered balancer has."""


class NoHealthyEngineError(AutellixError, RuntimeError):
    """Every engine is unhealthy (or none was given), so the call cannot be placed."""


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """The call a balancer places."""

    program_id: str
    """The program (session) the call belongs to."""
    prompt_tokens: int
    """Prompt length in tokens."""
    block_hashes: tuple[int, ...] = ()
    """Chained hashes of the prompt's full KV blocks (for cache-aware routing)."""


@dataclass(frozen=True, slots=True)
class EngineView:
    """What a balancer knows about one engine right now."""

    engine_id: str
    num_calls: int
    """LLM calls on the engine, waiting or running (the paper's load metric)."""
    healthy: bool = True
    retained_program_ids: frozenset[str] = frozenset()
    """Programs whose KV the engine holds through a tool call (see ``core.retention``)."""
