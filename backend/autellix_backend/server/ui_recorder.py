"""What the tracing UI draws over time that the process table does not keep: each engine's
queues, batch, KV usage, cache hit rate, preemptions and health, and each program's attained
service and queue level. (Restarts are the pool's own count, ``EngineSlot.num_restarts``.)

One sample a second, taken on the event loop by ``run``; each costs one pass over the engines
and over the live programs' rows (a float compare per program), and keeps bounded rings, so
the call path pays nothing and memory stays flat. A program's series outlives its row (for
the history view) until ``max_programs`` newer ones push it out.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from autellix_backend.server.metrics import ReportsSchedulerStats

if TYPE_CHECKING:
    from prometheus_client import Counter

    from autellix_backend.server.metrics import ServiceMetrics
    from autellix_backend.server.pool import EnginePool
    from autellix_backend.server.programs import ProgramRegistry

log = logging.getLogger("autellix.server.ui")

SAMPLE_INTERVAL_S = 1.0
MAX_POINTS = 600
"""Samples kept per series: ten minutes at one a second."""
MAX_PROGRAMS = 2_000
"""Programs whose series are kept, most recently changed first."""


@runtime_checkable
class ReportsKvUsage(Protocol):
    """Optional engine-adapter hook: share of the engine's KV blocks in use (0..1), None
    while it is not known."""

    def kv_usage(self) -> float | None: ...


def _ring() -> deque[float]:
    return deque(maxlen=MAX_POINTS)


@dataclass(slots=True, eq=False)
class EngineSeries:
    """Samples of one engine, oldest first (every ring has one entry per sample)."""

    t: deque[float] = field(default_factory=_ring)
    running: deque[int] = field(default_factory=lambda: deque(maxlen=MAX_POINTS))
    waiting: deque[int] = field(default_factory=lambda: deque(maxlen=MAX_POINTS))
    queues: deque[tuple[int, ...]] = field(default_factory=lambda: deque(maxlen=MAX_POINTS))
    kv_usage: deque[float | None] = field(default_factory=lambda: deque(maxlen=MAX_POINTS))
    cache_hit_rate: deque[float | None] = field(default_factory=lambda: deque(maxlen=MAX_POINTS))
    preemptions: deque[int] = field(default_factory=lambda: deque(maxlen=MAX_POINTS))
    healthy: deque[bool] = field(default_factory=lambda: deque(maxlen=MAX_POINTS))
    _preemptions: float = 0.0
    _prompt: tuple[int, int] = (0, 0)


@dataclass(slots=True, eq=False)
class ProgramSeries:
    """A program's attained service and queue level, one point per change."""

    t: deque[float] = field(default_factory=_ring)
    service: deque[float] = field(default_factory=_ring)
    level: deque[int] = field(default_factory=lambda: deque(maxlen=MAX_POINTS))
    promotions: deque[float] = field(default_factory=_ring)
    """Times the program's level went down."""


class UiRecorder:
    """Samples engines and programs for the UI's charts.

    Args:
        programs: the gateway's programs (its process table).
        pool: the engines.
        metrics: the service's metrics (preemption counts and prompt-cache totals).
        bounds: the queues' lower bounds of service (``SchedulerConfig.lower_bounds()``).
    """

    def __init__(
        self,
        programs: ProgramRegistry,
        pool: EnginePool,
        metrics: ServiceMetrics,
        bounds: Sequence[float],
    ) -> None:
        self._programs = programs
        self._pool = pool
        self._metrics = metrics
        self.bounds = tuple(bounds)
        self.engines: dict[str, EngineSeries] = {}
        self.programs: OrderedDict[str, ProgramSeries] = OrderedDict()
        """Table program id -> its series, least recently changed first."""

    def level(self, service: float) -> int:
        """The queue level (1 is Q1) of a program with ``service``."""
        return max(1, bisect.bisect_right(self.bounds, service))

    async def run(self, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        """Sample forever (the app runs this as a background task)."""
        while True:
            try:
                self.sample()
            except Exception:  # a failing engine adapter must not stop the other series
                log.exception("UI sample failed")
            await asyncio.sleep(interval_s)

    def sample(self, now: float | None = None) -> None:
        """Take one sample of every engine and of every live program."""
        now = time.time() if now is None else now
        self._sample_engines(now)
        self._sample_programs(now)

    def _sample_engines(self, now: float) -> None:
        preempted = _by_engine(self._metrics.preemptions)
        for engine_id, slot in self._pool.slots.items():
            series = self.engines.get(engine_id)
            if series is None:
                series = self.engines[engine_id] = EngineSeries()
            adapter = slot.adapter
            load = adapter.load()
            series.t.append(now)
            series.running.append(load.num_running)
            series.waiting.append(load.num_waiting)
            queues = adapter.queue_lengths() if isinstance(adapter, ReportsSchedulerStats) else ()
            series.queues.append(tuple(queues))
            usage = adapter.kv_usage() if isinstance(adapter, ReportsKvUsage) else None
            series.kv_usage.append(usage)
            prompt, cached = self._metrics.prompt_cache.get(engine_id, (0, 0))
            new_prompt = prompt - series._prompt[0]
            rate = (cached - series._prompt[1]) / new_prompt if new_prompt > 0 else None
            series.cache_hit_rate.append(rate)
            series._prompt = (prompt, cached)
            total = preempted.get(engine_id, 0.0)
            series.preemptions.append(int(total - series._preemptions))
            series._preemptions = total
            series.healthy.append(slot.healthy)

    def _sample_programs(self, now: float) -> None:
        for key, record in self._programs.table.programs.items():
            series = self.programs.get(key)
            if series is None:
                series = self.programs[key] = ProgramSeries()
                while len(self.programs) > MAX_PROGRAMS:
                    self.programs.popitem(last=False)
            elif series.service and series.service[-1] == record.service:
                continue
            level = self.level(record.service)
            if series.level and level < series.level[-1]:
                series.promotions.append(now)
            series.t.append(now)
            series.service.append(record.service)
            series.level.append(level)
            self.programs.move_to_end(key)


def _by_engine(counter: Counter) -> dict[str, float]:
    """A counter labelled by ``engine`` as engine id -> total."""
    totals: dict[str, float] = {}
    for family in counter.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                totals[sample.labels["engine"]] = sample.value
    return totals
