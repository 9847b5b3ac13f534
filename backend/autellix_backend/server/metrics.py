"""Prometheus metrics of the service, on a registry of its own (one per app).

Counters and histograms are updated on the call path; gauges that describe state (queue
lengths per priority level, engine health, programs, cache hit rate, preemptions) are read
from the process table and the engines when Prometheus scrapes, so they cost nothing between
scrapes.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.registry import Collector

from autellix_backend.core import CallStatus, SchedulerConfig
from autellix_backend.server.supervision import EngineState

if TYPE_CHECKING:
    from autellix_backend.engines.base import EngineUsage
    from autellix_backend.server.pool import EnginePool
    from autellix_backend.server.programs import ProgramRegistry

MAX_ERROR_LABEL = 200
"""Characters of an engine's last error kept in its metric label."""
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
PROGRAM_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)


@runtime_checkable
class ReportsSchedulerStats(Protocol):
    """Optional engine-adapter hooks for program-aware engines (the simulated engine has them)."""

    def queue_lengths(self) -> tuple[int, ...]:
        """Calls in each priority queue of the engine's scheduler, Q1 first."""


class ServiceMetrics:
    """The metrics ``/metrics`` exposes."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "autellix_requests", "API requests answered", ["route", "status"], registry=r
        )
        self.calls = Counter(
            "autellix_calls",
            "LLM calls closed, by engine and outcome",
            ["engine", "outcome"],
            registry=r,
        )
        self.call_latency = Histogram(
            "autellix_call_latency_seconds",
            "Call latency, arrival to last token",
            ["engine"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.call_ttft = Histogram(
            "autellix_call_ttft_seconds",
            "Time to first token",
            ["engine"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.program_latency = Histogram(
            "autellix_program_latency_seconds",
            "Program latency, start to end of session",
            buckets=PROGRAM_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "autellix_prompt_tokens", "Prompt tokens reported by engines", ["engine"], registry=r
        )
        self.cached_tokens = Counter(
            "autellix_cached_prompt_tokens",
            "Prompt tokens served from the prefix cache",
            ["engine"],
            registry=r,
        )
        self.completion_tokens = Counter(
            "autellix_completion_tokens", "Output tokens", ["engine"], registry=r
        )
        self.spans = Counter(
            "autellix_otlp_spans",
            "OTLP spans received, by result (placed, unplaced)",
            ["result"],
            registry=r,
        )
        self.preemptions = Counter(
            "autellix_preemptions",
            "Preemptions of calls, as engines report them",
            ["engine"],
            registry=r,
        )
        self.engine_failures = Counter(
            "autellix_engine_failures", "Times an engine left rotation", ["engine"], registry=r
        )
        self.prompt_cache: dict[str, tuple[int, int]] = {}
        """Engine id -> (prompt tokens, cached prompt tokens), for the hit rate."""
        self._children: dict[tuple[MetricWrapperBase, tuple[str, ...]], Any] = {}

    def child(self, metric: MetricWrapperBase, *labels: str) -> Any:
        """``metric.labels(*labels)``, remembered: prometheus_client checks the labels and
        takes a lock on every ``labels`` call, and each call asks for the same few children."""
        key = (metric, labels)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = metric.labels(*labels)
        return found

    def record_usage(self, engine_id: str, usage: EngineUsage) -> None:
        self.child(self.prompt_tokens, engine_id).inc(usage.prompt_tokens)
        self.child(self.cached_tokens, engine_id).inc(usage.cached_tokens)
        self.child(self.completion_tokens, engine_id).inc(usage.completion_tokens)
        prompt, cached = self.prompt_cache.get(engine_id, (0, 0))
        self.prompt_cache[engine_id] = (prompt + usage.prompt_tokens, cached + usage.cached_tokens)

    def watch(self, registry: ProgramRegistry, pool: EnginePool, config: SchedulerConfig) -> None:
        """Register the scrape-time gauges over ``registry`` and ``pool``."""
        self.registry.register(_StateCollector(registry, pool, config, self))


class _StateCollector(Collector):
    def __init__(
        self,
        programs: ProgramRegistry,
        pool: EnginePool,
        config: SchedulerConfig,
        metrics: ServiceMetrics,
    ) -> None:
        self._programs = programs
        self._pool = pool
        self._bounds = config.lower_bounds()
        self._metrics = metrics

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        yield from self._gateway_queues()
        yield from self._engines()
        programs = GaugeMetricFamily("autellix_programs", "Programs in the process table")
        programs.add_metric([], len(self._programs))
        yield programs

    def _gateway_queues(self) -> Iterator[Metric]:
        """Calls in flight by the priority level their program had when they arrived."""
        family = GaugeMetricFamily(
            "autellix_calls_by_priority_level",
            "Calls in flight in the process table, by state and starting priority level (Q1=1)",
            labels=["state", "level"],
        )
        counts: dict[tuple[str, int], int] = {}
        for call in self._programs.table.calls.values():
            state = "running" if call.status is CallStatus.RUNNING else "waiting"
            level = bisect.bisect_right(self._bounds, call.priority)
            counts[(state, level)] = counts.get((state, level), 0) + 1
        for state in ("waiting", "running"):
            for level in range(1, len(self._bounds) + 1):
                family.add_metric([state, str(level)], counts.get((state, level), 0))
        yield family

    def _engines(self) -> Iterator[Metric]:
        healthy = GaugeMetricFamily(
            "autellix_engine_healthy", "1 if in rotation", labels=["engine"]
        )
        inflight = GaugeMetricFamily(
            "autellix_engine_inflight_calls", "Calls in flight", labels=["engine"]
        )
        hit_rate = GaugeMetricFamily(
            "autellix_engine_cache_hit_rate",
            "Share of prompt tokens served from the prefix cache",
            labels=["engine"],
        )
        queues = GaugeMetricFamily(
            "autellix_engine_queue_length",
            "Calls in each priority queue of a program-aware engine (Q1=1)",
            labels=["engine", "level"],
        )
        state = GaugeMetricFamily(
            "autellix_engine_state",
            "1 for the engine's life-cycle state (starting, healthy, failed, restarting, stopped)",
            labels=["engine", "state"],
        )
        restarts = CounterMetricFamily(
            "autellix_engine_restarts",
            "Times an engine came back into rotation after failing (restarted, or answering again)",
            labels=["engine"],
        )
        last_error = GaugeMetricFamily(
            "autellix_engine_last_error",
            "Unix time of the engine's last failure; the label holds its reason",
            labels=["engine", "error"],
        )
        for slot in self._pool.slots.values():
            eid = slot.engine_id
            healthy.add_metric([eid], 1.0 if slot.healthy else 0.0)
            for name in EngineState:
                state.add_metric([eid, name.value], 1.0 if slot.state is name else 0.0)
            restarts.add_metric([eid], slot.num_restarts)
            if slot.last_error is not None and slot.last_error_at is not None:
                last_error.add_metric([eid, slot.last_error[:MAX_ERROR_LABEL]], slot.last_error_at)
            inflight.add_metric([eid], len(slot.inflight))
            prompt, cached = self._metrics.prompt_cache.get(eid, (0, 0))
            hit_rate.add_metric([eid], cached / prompt if prompt else 0.0)
            adapter = slot.adapter
            if isinstance(adapter, ReportsSchedulerStats):
                for level, n in enumerate(adapter.queue_lengths(), start=1):
                    queues.add_metric([eid, str(level)], n)
        yield from (healthy, state, restarts, last_error, inflight, hit_rate, queues)
