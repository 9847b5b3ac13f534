"""The discrete-event simulator: programs arrive, calls flow through engines, results come out.

The simulator is the front end: it owns the one process table (through a ``ProgramTracker``)
and runs one ``SimEngine`` per engine; a balancer routes each call, which reaches its engine
with its program's snapshot. A finished call's service and wait flow back into the table, and
the program's new snapshot is pushed to every engine's queue. A call is released when all its
parents have finished plus its ``delay_before`` (tool or human time). A program's session ends
when its last call finishes. The run is deterministic: ties are broken by event kind, then by
the order events were created.

With ``kv_retention`` on, each call is sent with the time its program is expected to be away
after it: in ``dag`` mode only when the DAG has a child call, for the expected duration of
the tool before that child (``ProgramSpec.metadata["tool:<child call id>"]``, learnt from the
delays seen so far); in ``ttl`` mode after every call, for the default tool time. A
program's holds on other engines are released when its next call is routed elsewhere, and
all of them when it ends.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from autellix_backend.core import (
    AutellixError,
    CallArrival,
    InvalidCallError,
    KVRetention,
    Policy,
    ProcessTable,
    ProgramTracker,
    ToolDurations,
)
from autellix_backend.routing import EngineView, RouteRequest, make_balancer
from autellix_backend.sim.config import SimConfig
from autellix_backend.sim.engine import SimEngine
from autellix_backend.sim.events import CallRelease, Event, ProgramArrival, StepStart
from autellix_backend.sim.hashing import prompt_block_hashes
from autellix_backend.sim.kv_cache import KVEventListener
from autellix_backend.sim.oracle import estimate_call_service
from autellix_backend.sim.profiles import get_profile
from autellix_backend.sim.results import CallResult, ProgramResult, SimResult
from autellix_backend.spec import CallSpec, ProgramSpec


class SimulationError(AutellixError, RuntimeError):
    """The run could not finish every program (an engine stalled with calls left)."""


@dataclass(slots=True, eq=False)
class _ProgramRun:
    """Progress of one program through the run."""

    spec: ProgramSpec
    children: dict[str, list[CallSpec]]
    missing_parents: dict[str, int]
    ready_time: dict[str, float] = field(default_factory=dict)
    estimates: dict[str, float] = field(default_factory=dict)
    remaining: float = 0.0
    num_finished: int = 0


class Simulator:
    """One simulation run over ``programs`` (use ``run_simulation`` for the one-call form)."""

    def __init__(
        self, programs: Sequence[ProgramSpec], config: SimConfig, *, progress: bool = False
    ) -> None:
        self.config = config
        self.model = get_profile(config.engine.profile)
        self.tracker = ProgramTracker(config.scheduler.policy, ProcessTable(history_size=0))
        self.table = self.tracker.table
        self.engines = [
            SimEngine(
                config.engine,
                config.scheduler,
                engine_id=f"engine-{i}",
                cost_model=self.model,
            )
            for i in range(config.num_engines)
        ]
        for engine in self.engines:
            self.tracker.subscribe(engine.scheduler.refresh)
        _validate(programs, self.engines[0].kv.num_blocks, config.engine.block_size)
        self.balancer = make_balancer(config.balancer, locality_threshold=config.locality_threshold)
        if self.balancer.uses_kv_events:
            for engine in self.engines:
                engine.kv.listener = self._kv_listener(engine.engine_id)
        self.tools = ToolDurations(config.scheduler.retention_rule.default_tool_seconds)
        """Expected tool durations, learnt from the delays the run has seen."""
        self.engine_busy = [False] * len(self.engines)
        self._engine_index = {e.engine_id: i for i, e in enumerate(self.engines)}
        self._programs = sorted(programs, key=lambda p: p.arrival_time)
        self._next_program = 0
        self._heap: list[tuple[float, int, int, Event]] = []
        self._counter = itertools.count()
        self._runs: dict[str, _ProgramRun] = {}
        self._oracle = config.scheduler.policy is Policy.SRPT
        self._program_results: list[ProgramResult] = []
        self._call_results: list[CallResult] = []
        self._progress = progress
        self._bar: Any = None

    # The loop ------------------------------------------------------------------

    def run(self) -> SimResult:
        """Run to completion and return what was measured."""
        self._push_next_program()
        if self._progress:
            from tqdm import tqdm

            self._bar = tqdm(total=len(self._programs), unit="program", desc="simulating")
        try:
            while self._heap:
                _, _, _, event = heapq.heappop(self._heap)
                for follow in event.handle(self):
                    self._push(follow)
        finally:
            if self._bar is not None:
                self._bar.close()
        if self._runs:
            left = ", ".join(sorted(self._runs)[:5])
            raise SimulationError(f"{len(self._runs)} programs never finished (e.g. {left})")
        return self._result()

    def next_input_time(self) -> float:
        """Earliest pending event that could bring an engine new work (not a step start)."""
        times = [t for t, _, _, e in self._heap if not isinstance(e, StepStart)]
        return min(times, default=math.inf)

    def claim_engine(self, index: int) -> bool:
        """Mark engine ``index`` stepping; False if it already was."""
        if self.engine_busy[index]:
            return False
        self.engine_busy[index] = True
        return True

    def release_engine(self, index: int) -> None:
        self.engine_busy[index] = False

    def _push(self, event: Event) -> None:
        heapq.heappush(self._heap, (event.time, event.order, next(self._counter), event))

    def _push_next_program(self) -> None:
        if self._next_program < len(self._programs):
            program = self._programs[self._next_program]
            self._next_program += 1
            self._push(ProgramArrival(program.arrival_time, program))

    # Handlers (called by the events) --------------------------------------------

    def on_program_arrival(self, program: ProgramSpec, now: float) -> list[Event]:
        """Open the program's session and release its root calls."""
        self._push_next_program()
        self.table.start_program(program.program_id, now)
        run = _ProgramRun(
            spec=program,
            children={c.call_id: [] for c in program.calls},
            missing_parents={c.call_id: len(c.parent_ids) for c in program.calls},
        )
        for call in program.calls:
            for parent in call.parent_ids:
                run.children[parent].append(call)
        if self._oracle:
            run.estimates = {
                c.call_id: estimate_call_service(c, self.model, self.config.scheduler)
                for c in program.calls
            }
            run.remaining = math.fsum(run.estimates.values())
        self._runs[program.program_id] = run
        return [
            CallRelease(now + c.delay_before, program.program_id, c)
            for c in program.calls
            if not c.parent_ids
        ]

    def submit_call(self, program_id: str, call: CallSpec, now: float) -> int:
        """Route a released call to an engine and queue it there; returns the engine index."""
        run = self._runs[program_id]
        index = self._route(program_id, call)
        arrival = CallArrival(
            call_id=call.call_id,
            program_id=program_id,
            thread_id=call.thread_id,
            parent_ids=call.parent_ids,
            prompt_tokens=call.prompt_tokens,
            max_tokens=call.output_tokens,
            oracle_remaining=max(run.remaining, 0.0) if self._oracle else None,
        )
        engine = self.engines[index]
        record = self.tracker.admit(arrival, now, engine_id=engine.engine_id)
        for other in self.engines:
            if other is not engine:
                other.release_program(program_id)
        engine.add_call(
            self.tracker.engine_arrival(record, arrival),
            call.prompt,
            call.output_tokens,
            now,
            output_key=call.output_key,
            retain_for=self._expected_away(run, call),
        )
        return index

    def on_call_finished(self, result: CallResult) -> list[Event]:
        """Record a finished call, release the calls it unblocks, close a finished program."""
        self._call_results.append(result)
        run = self._runs[result.program_id]
        run.num_finished += 1
        now = result.finish_time
        self.tracker.complete(
            self.table.call(result.call_id), now, service=result.service, wait=result.wait
        )
        if self._oracle:
            run.remaining -= run.estimates.get(result.call_id, 0.0)
        follow: list[Event] = []
        for child in run.children[result.call_id]:
            run.missing_parents[child.call_id] -= 1
            tool = run.spec.metadata.get(f"tool:{child.call_id}")
            if tool is not None:
                self.tools.observe(tool, child.delay_before)
            ready = max(run.ready_time.get(child.call_id, now), now)
            run.ready_time[child.call_id] = ready
            if run.missing_parents[child.call_id] == 0:
                follow.append(CallRelease(ready + child.delay_before, result.program_id, child))
        if run.num_finished == run.spec.num_calls:
            self._finish_program(run, now)
        return follow

    # Helpers -------------------------------------------------------------------

    def _expected_away(self, run: _ProgramRun, call: CallSpec) -> float | None:
        """Seconds the program is expected to be away after ``call``; None: no next call."""
        mode = self.config.scheduler.kv_retention
        if mode is KVRetention.OFF:
            return None
        if mode is KVRetention.TTL:
            return self.tools.default
        children = run.children[call.call_id]
        if not children:
            return None
        metadata = run.spec.metadata
        return max(self.tools.expected(metadata.get(f"tool:{c.call_id}")) for c in children)

    def _kv_listener(self, engine_id: str) -> KVEventListener:
        """Forward one engine's prefix-cache changes to the balancer (its KV events)."""
        balancer = self.balancer

        def listen(stored: Sequence[int], removed: Sequence[int]) -> None:
            balancer.on_kv_event(engine_id, stored, removed)

        return listen

    def _route(self, program_id: str, call: CallSpec) -> int:
        if len(self.engines) == 1:
            return 0
        hashes = (
            prompt_block_hashes(call.prompt, self.config.engine.block_size)
            if self.balancer.uses_block_hashes
            else ()
        )
        request = RouteRequest(program_id, call.prompt_tokens, hashes)
        views = [
            EngineView(e.engine_id, e.num_calls, retained_program_ids=e.retained_program_ids())
            for e in self.engines
        ]
        return self._engine_index[self.balancer.choose(request, views)]

    def _finish_program(self, run: _ProgramRun, now: float) -> None:
        spec = run.spec
        record = self.table.end_program(spec.program_id, now)
        del self._runs[spec.program_id]
        self.balancer.on_program_finished(spec.program_id)
        for engine in self.engines:
            engine.release_program(spec.program_id)
        latency = now - spec.arrival_time
        tokens = spec.output_tokens
        self._program_results.append(
            ProgramResult(
                program_id=spec.program_id,
                workload=spec.workload,
                arrival_time=spec.arrival_time,
                finish_time=now,
                latency=latency,
                output_tokens=tokens,
                num_calls=spec.num_calls,
                total_wait=record.total_wait,
                latency_per_token=latency / tokens if tokens else latency,
            )
        )
        if self._bar is not None:
            self._bar.update(1)

    def _result(self) -> SimResult:
        programs = tuple(
            sorted(self._program_results, key=lambda p: (p.arrival_time, p.program_id))
        )
        start = min((p.arrival_time for p in programs), default=0.0)
        end = max((p.finish_time for p in programs), default=0.0)
        return SimResult(
            programs=programs,
            calls=tuple(self._call_results),
            engines=tuple(e.stats() for e in self.engines),
            makespan=end - start,
        )


def run_simulation(
    programs: Iterable[ProgramSpec], config: SimConfig | None = None, *, progress: bool = False
) -> SimResult:
    """Simulate ``programs`` on the engines of ``config`` and return the measurements.

    Raises:
        InvalidCallError: a malformed workload (nothing is simulated).
        UnknownPolicyError, UnknownProfileError, UnknownBalancerError: bad names in ``config``.
    """
    return Simulator(list(programs), config or SimConfig(), progress=progress).run()


def _validate(programs: Sequence[ProgramSpec], num_kv_blocks: int, block_size: int) -> None:
    """Reject a malformed workload before anything runs."""
    program_ids: set[str] = set()
    call_ids: set[str] = set()
    for program in programs:
        pid = program.program_id
        if not pid or pid in program_ids:
            raise InvalidCallError(f"program id {pid!r} is empty or repeated")
        program_ids.add(pid)
        if not program.calls:
            raise InvalidCallError(f"program {pid!r} has no calls")
        if not (math.isfinite(program.arrival_time) and program.arrival_time >= 0):
            raise InvalidCallError(f"program {pid!r} has a bad arrival_time")
        seen: set[str] = set()
        for call in program.calls:
            _validate_call(pid, call, seen, call_ids, num_kv_blocks, block_size)
            seen.add(call.call_id)
            call_ids.add(call.call_id)


def _validate_call(
    pid: str,
    call: CallSpec,
    earlier: set[str],
    all_ids: set[str],
    num_kv_blocks: int,
    block_size: int,
) -> None:
    cid = call.call_id
    if not cid or cid in all_ids:
        raise InvalidCallError(f"call id {cid!r} in program {pid!r} is empty or repeated")
    missing = [p for p in call.parent_ids if p not in earlier]
    if missing:
        raise InvalidCallError(f"call {cid!r}: parents {missing} are not earlier calls of {pid!r}")
    if call.output_tokens < 0 or any(s.num_tokens < 0 for s in call.prompt):
        raise InvalidCallError(f"call {cid!r} has negative token counts")
    if not (math.isfinite(call.delay_before) and call.delay_before >= 0):
        raise InvalidCallError(f"call {cid!r} has a bad delay_before")
    blocks = math.ceil((max(call.prompt_tokens, 1) + call.output_tokens) / block_size)
    if blocks > num_kv_blocks:
        raise InvalidCallError(
            f"call {cid!r} needs {blocks} KV blocks; an engine has {num_kv_blocks}"
        )
