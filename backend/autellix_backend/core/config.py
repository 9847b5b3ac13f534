"""Scheduler settings: every value the paper leaves open is a named field here."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from autellix_backend.core.errors import UnknownPolicyError
from autellix_backend.core.registry import parse_kind
from autellix_backend.core.retention import KVRetention, RetentionRule


class Policy(StrEnum):
    """The scheduling policies the core implements."""

    FCFS = "fcfs"
    """First come, first served; never preempts for a waiting call (stock vLLM)."""
    MLFQ = "mlfq"
    """FastServe-style multi-level feedback queue: every new call enters the top queue."""
    PLAS = "plas"
    """Program-level attained service: a call starts in the queue of its program's total service."""
    ATLAS = "atlas"
    """Adaptive thread-level attained service: program-wide longest critical path (paper's rule)."""
    ATLAS_EXACT = "atlas_exact"
    """ATLAS with the true DAG: priority = max over parents of (priority + service)."""
    SRPT = "srpt"
    """Clairvoyant shortest-remaining-program-time oracle, for simulations only."""

    @classmethod
    def parse(cls, name: str | Policy) -> Policy:
        """Return the policy called ``name`` (case-insensitive, ``-`` or ``_``)."""
        return parse_kind(cls, name, what="policy", plural="policies", error=UnknownPolicyError)


class QueueOrder(StrEnum):
    """Order of calls inside one priority queue."""

    FIFO = "fifo"
    """First come, first served by queue entry (the paper's rule)."""
    LEAST_ATTAINED = "least_attained"
    """Least program attained service first (completed calls plus the call's own progress),
    then queue entry: exact LAS inside each coarse queue."""


class ServiceUnit(StrEnum):
    """What counts as a unit of attained service."""

    ENGINE_TIME = "engine_time"
    """Seconds of engine execution: every call in a step attains that step's duration."""
    TOKENS = "tokens"
    """A token cost: ``prefill_token_cost * prefill + decode_token_cost * decode`` tokens."""


@dataclass(frozen=True, slots=True)
class SchedulerConfig:
    """Settings of the scheduling core.

    Defaults were picked by ``benchmarks/sweep_scheduler_defaults.py`` (see BENCHMARKS.md);
    quanta are in the configured service unit.
    """

    policy: Policy = Policy.PLAS
    """Which priority rule orders calls."""
    num_queues: int = 8
    """K, the number of discretised priority queues (Q1..QK)."""
    base_quantum: float = 0.25
    """Quantum of the top queue Q1 (seconds of engine time, or token cost units)."""
    quantum_growth: float = 2.0
    """Each lower queue's quantum is this factor times the one above (FastServe doubles)."""
    starvation_beta: float | None = 8.0
    """Promote a call to Q1 when (W_program + W_call) / (T_program + T_call) >= beta.

    None disables the rule."""
    service_unit: ServiceUnit = ServiceUnit.ENGINE_TIME
    """Whether attained service is engine seconds or a token cost."""
    prefill_token_cost: float = 0.0
    """Cost of one prefill token when ``service_unit`` is TOKENS."""
    decode_token_cost: float = 1.0
    """Cost of one decode token when ``service_unit`` is TOKENS."""
    preemption: bool = True
    """Let a higher-priority waiting call displace a running one when the batch is full."""
    stop_at_first_misfit: bool = True
    """Batch building stops at the first call that does not fit (the paper's rule)."""
    queue_boundaries: tuple[float, ...] = field(default=())
    """Explicit lower bounds of Q2..QK; empty means the cumulative sums of the quanta."""
    queue_order: QueueOrder = QueueOrder.FIFO
    """Order inside a queue: FIFO (the paper) or least program attained service first."""
    requeue_preempted: bool = False
    """Send a preempted call to the tail of its queue (round robin) instead of keeping its place."""
    kv_retention: KVRetention = KVRetention.OFF
    """Keep a finished call's KV blocks through the program's tool call (see ``retention``)."""
    retention_rule: RetentionRule = field(default_factory=RetentionRule)
    """How long a hold lasts: TTL from the tool's expected time, weighed against memory."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "policy", Policy.parse(self.policy))
        object.__setattr__(self, "service_unit", ServiceUnit(self.service_unit))
        object.__setattr__(self, "queue_order", QueueOrder(self.queue_order))
        object.__setattr__(self, "kv_retention", KVRetention.parse(self.kv_retention))
        if isinstance(self.retention_rule, Mapping):  # from a config file or the plugin's JSON
            object.__setattr__(self, "retention_rule", RetentionRule(**self.retention_rule))
        if self.num_queues < 1:
            raise ValueError("num_queues must be at least 1")
        if not self.base_quantum > 0:
            raise ValueError("base_quantum must be positive")
        if self.quantum_growth < 1:
            raise ValueError("quantum_growth must be at least 1")
        if self.starvation_beta is not None and not self.starvation_beta > 0:
            raise ValueError("starvation_beta must be positive or None")
        if self.prefill_token_cost < 0 or self.decode_token_cost < 0:
            raise ValueError("token costs must be non-negative")
        if self.queue_boundaries:
            bounds = self.queue_boundaries
            if len(bounds) != self.num_queues - 1:
                raise ValueError("queue_boundaries needs num_queues - 1 values")
            if any(b <= a for a, b in zip((0.0, *bounds), bounds, strict=False)):
                raise ValueError("queue_boundaries must be positive and increasing")

    def quantum(self, level: int) -> float:
        """The time quantum of queue ``level`` (0 is Q1); the last queue's is infinite."""
        if level >= self.num_queues - 1:
            return math.inf
        return float(self.base_quantum * self.quantum_growth**level)

    def lower_bounds(self) -> tuple[float, ...]:
        """Lower service bound of every queue, Q1 first (Q1 starts at 0)."""
        if self.queue_boundaries:
            return (0.0, *self.queue_boundaries)
        bounds = [0.0]
        for level in range(self.num_queues - 1):
            bounds.append(bounds[-1] + self.base_quantum * self.quantum_growth**level)
        return tuple(bounds)
