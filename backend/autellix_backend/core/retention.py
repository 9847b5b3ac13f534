"""KV retention through tool calls: when to keep a finished call's KV blocks, and for how long.

When a program's call finishes and a tool call follows, the next call usually extends the
same prompt seconds later. Keeping the finished call's blocks out of eviction for a
time-to-live saves that prefill, at the price of memory other calls could use meanwhile.
The rule here follows Continuum's idea (arXiv 2511.02230), reimplemented from its
description: the TTL covers the tool's expected duration (per tool name, learnt from the
durations seen, with a default), and the hold is only worth it while the prefill it saves
costs more than the memory it takes, weighted by how full the memory is.

Everything here is pure bookkeeping with no engine types: the simulator's KV cache and the
vLLM plugin's block pool both keep their holds in a ``RetentionLedger`` and ask the same
``RetentionRule``, so their results can be compared.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from autellix_backend.core.errors import AutellixError
from autellix_backend.core.registry import parse_kind

T = TypeVar("T")


class UnknownRetentionError(AutellixError, ValueError):
    """A ``kv_retention`` value that names no mode."""


class KVRetention(StrEnum):
    """When a finished call's KV blocks are kept for the program's next call."""

    OFF = "off"
    """Never: released blocks go straight to the prefix cache's LRU (stock vLLM)."""
    TTL = "ttl"
    """After every call of a live program, for the TTL of the default tool duration."""
    DAG = "dag"
    """Only when the program's DAG says a call follows, for the TTL of that tool's duration."""

    @classmethod
    def parse(cls, name: str | KVRetention) -> KVRetention:
        """The mode called ``name`` (case-insensitive, ``-`` or ``_``)."""
        return parse_kind(cls, name, what="kv_retention mode", error=UnknownRetentionError)


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """How long to hold a finished call's blocks (Continuum-style TTL).

    A hold of ``b`` blocks out of ``B`` for ``t`` seconds takes the fraction ``b / B`` of the
    memory for ``t``. When the memory is a fraction ``u`` full, the other calls lose about
    ``memory_value * u * (b / B) * t`` engine-seconds (the prefill their evicted blocks will
    cost, or the batch slots they wait for). The hold saves the prefill of the held tokens,
    ``recompute_seconds``. It is made when it saves more than it costs over the whole
    expected tool time; the TTL is the expected time times ``ttl_slack`` (tool times are
    right-skewed), cut back to the break-even point and to ``max_ttl``. A hold also yields
    whenever a higher-priority call needs its blocks (``RetentionLedger.yield_to``), so its
    cost is bounded by the lower-priority work it delays.
    """

    default_tool_seconds: float = 1.0
    """Expected tool time of a tool never seen (and of every tool in ``ttl`` mode)."""
    ttl_slack: float = 2.0
    """TTL as a multiple of the expected tool time (a margin for slower-than-mean runs)."""
    max_ttl: float = 30.0
    """Longest hold in seconds, whatever the tool."""
    min_pressure: float = 0.05
    """Floor of the memory-pressure weight (an idle engine's memory is not quite free)."""
    memory_value: float = 1.0
    """Engine-seconds other calls lose per second the whole pool is held at full pressure:
    1, since with the whole pool held nothing else runs. (0.1 undervalued memory tenfold:
    under load, holds of up to 30 s kept lower-ranked calls waiting; in the simulator's
    sweep 1.0 gave lower latency than 0.1 at 10 of 12 rate x balancer points.)"""
    max_held_fraction: float = 1.0
    """Most of the KV pool all holds of an engine may keep together (a hold that would go
    past it is not made). Holds yield to the calls that need their blocks anyway; in the
    simulator's benchmark a cap below 1 cost more recomputation than it saved (0.5 and 0.75
    left 1.73x and 1.07x fewer recomputed tokens, against 1.78x uncapped; measured with
    ``memory_value`` 0.1, before its default became 1.0)."""

    def __post_init__(self) -> None:
        if not (self.default_tool_seconds >= 0 and self.max_ttl >= 0):
            raise ValueError("default_tool_seconds and max_ttl must be >= 0")
        if self.ttl_slack < 1:
            raise ValueError("ttl_slack must be at least 1")
        if not 0 < self.min_pressure <= 1:
            raise ValueError("min_pressure must be in (0, 1]")
        if not self.memory_value > 0:
            raise ValueError("memory_value must be positive")
        if not 0 < self.max_held_fraction <= 1:
            raise ValueError("max_held_fraction must be in (0, 1]")

    def held_limit(self, num_total_blocks: int) -> int:
        """Blocks all holds of a pool of ``num_total_blocks`` may keep together."""
        return int(self.max_held_fraction * num_total_blocks)

    def ttl(
        self,
        *,
        expected_tool_seconds: float,
        recompute_seconds: float,
        num_blocks: int,
        num_used_blocks: int,
        num_total_blocks: int,
    ) -> float:
        """Seconds to hold ``num_blocks`` blocks; 0 means release them now.

        Args:
            expected_tool_seconds: how long the program is expected to be away.
            recompute_seconds: the prefill time the hold would save.
            num_blocks: blocks the hold keeps (those only this call holds).
            num_used_blocks: blocks in use on the engine now, the hold's included.
            num_total_blocks: blocks in the pool.
        """
        if num_blocks <= 0 or num_total_blocks <= 0 or recompute_seconds <= 0:
            return 0.0
        pressure = max(self.min_pressure, min(1.0, num_used_blocks / num_total_blocks))
        # engine-seconds lost by others per second held
        cost_rate = self.memory_value * pressure * num_blocks / num_total_blocks
        break_even = recompute_seconds / cost_rate
        if break_even < expected_tool_seconds:
            return 0.0  # the hold would cost more than the prefill it saves
        return min(self.max_ttl, self.ttl_slack * expected_tool_seconds, break_even)


class ToolDurations:
    """Expected duration of each tool, learnt from the durations seen (spans or the DAG).

    The estimate is an exponentially weighted mean, so a tool that slows down is followed.

    Args:
        default: the estimate for a tool with no history.
        weight: weight of the newest observation.
    """

    def __init__(self, default: float = 1.0, *, weight: float = 0.2) -> None:
        if default < 0 or not 0 < weight <= 1:
            raise ValueError("default must be >= 0 and weight in (0, 1]")
        self.default = default
        self.weight = weight
        self._means: dict[str, float] = {}

    def observe(self, tool: str, seconds: float) -> None:
        """Record that ``tool`` took ``seconds``."""
        if not (math.isfinite(seconds) and seconds >= 0):
            return
        mean = self._means.get(tool)
        self._means[tool] = seconds if mean is None else mean + self.weight * (seconds - mean)

    def expected(self, tool: str | None) -> float:
        """Expected seconds of ``tool`` (the default when unknown or None)."""
        if tool is None:
            return self.default
        return self._means.get(tool, self.default)


@dataclass(slots=True)
class Hold(Generic[T]):
    """One program's retained blocks on one engine."""

    program_id: str
    payload: T
    """What the engine needs to release the blocks (a block table, a list of block ids)."""
    num_blocks: int
    expires_at: float
    priority: float
    """The program's rank when the hold was made; lower runs first (attained service)."""


class RetentionLedger(Generic[T]):
    """The holds of one engine, at most one per program. The engine frees what it returns."""

    def __init__(self) -> None:
        self._holds: dict[str, Hold[T]] = {}

    def __len__(self) -> int:
        return len(self._holds)

    def __iter__(self) -> Iterator[Hold[T]]:
        return iter(list(self._holds.values()))

    def __contains__(self, program_id: object) -> bool:
        return program_id in self._holds

    @property
    def num_blocks(self) -> int:
        """Blocks kept by all holds."""
        return sum(h.num_blocks for h in self._holds.values())

    def hold(self, hold: Hold[T]) -> Hold[T] | None:
        """Keep ``hold``; returns the program's previous hold, which the engine must free."""
        old = self._holds.pop(hold.program_id, None)
        self._holds[hold.program_id] = hold
        return old

    def next_expiry(self) -> float | None:
        """When the first hold's TTL runs out (None: no hold)."""
        return min((h.expires_at for h in self._holds.values()), default=None)

    def take(self, program_id: str) -> Hold[T] | None:
        """Remove the program's hold (its next call arrived, it ended, or it was aborted)."""
        return self._holds.pop(program_id, None)

    def expired(self, now: float) -> list[Hold[T]]:
        """Remove and return the holds whose TTL has run out by ``now``."""
        done = [h for h in self._holds.values() if h.expires_at <= now]
        for h in done:
            del self._holds[h.program_id]
        return done

    def fits(self, program_id: str, num_blocks: int, *, limit: int) -> bool:
        """Whether ``program_id``'s new hold of ``num_blocks`` keeps all holds within ``limit``.

        The program's own previous hold does not count (the new one replaces it). A new hold
        displaces no other: those were made earlier, so their programs are due back sooner.
        """
        others = sum(h.num_blocks for h in self._holds.values() if h.program_id != program_id)
        return others + num_blocks <= limit

    def yield_to(
        self,
        num_blocks: int,
        *,
        priority: float,
        release: Callable[[Hold[T]], int],
        force: bool = False,
    ) -> int:
        """Free holds until ``num_blocks`` blocks are free for a call of rank ``priority``.

        Only holds ranked no better than the waiting call give way (the worst first), unless
        ``force`` (nothing else can run: retention must never stall the engine). ``release``
        frees one hold and returns how many blocks that freed (held blocks another call
        shares free nothing). Returns the blocks freed.
        """
        order = sorted(self._holds.values(), key=lambda h: (-h.priority, h.expires_at))
        freed = 0
        for h in order:
            if freed >= num_blocks:
                break
            if not force and h.priority < priority:
                continue
            del self._holds[h.program_id]
            freed += release(h)
        return freed
