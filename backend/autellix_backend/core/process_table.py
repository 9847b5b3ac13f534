"""The process table: programs, their threads, calls, DAG, and the history of finished ones.

Plain data and bookkeeping only: priorities are the policies' business and ordering is the
engine queues'. One table, owned by the front end (the gateway, the simulator's front end, the
replay driver), is the only writer of program state; each call reaches its engine with a
frozen ``ProgramSnapshot`` taken from it, and the engine reports the service it consumed back.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

from autellix_backend.core.dag import ProgramDag
from autellix_backend.core.errors import (
    DuplicateError,
    InvalidCallError,
    InvalidTransitionError,
    UnknownCallError,
    UnknownProgramError,
)
from autellix_protocol.snapshot import ZERO_SNAPSHOT, ProgramSnapshot, ProtocolError

MAX_CALL_EVENTS = 64
"""Preemptions and promotions a call keeps the times of (its counts go on past this)."""


class CallStatus(IntEnum):
    """Life cycle of a call; ordered so that ``status >= FINISHED`` means done."""

    WAITING = 0
    RUNNING = 1
    PREEMPTED = 2
    FINISHED = 3
    ABORTED = 4

    @property
    def is_done(self) -> bool:
        return self >= CallStatus.FINISHED


@dataclass(frozen=True, slots=True)
class CallArrival:
    """What the front end tells the core about a new LLM call."""

    call_id: str
    """Unique id of the call."""
    program_id: str
    """The program (session) the call belongs to."""
    thread_id: str = "main"
    """The program thread that issued it (a LangGraph task, a tree-search branch)."""
    parent_ids: tuple[str, ...] = ()
    """Calls this one depends on, when the front end knows the DAG."""
    prompt_tokens: int = 0
    """Prompt length in tokens."""
    max_tokens: int | None = None
    """Upper bound on output tokens, if the client set one."""
    oracle_remaining: float | None = None
    """Remaining service of the whole program, known only to a clairvoyant simulation (SRPT)."""
    snapshot: ProgramSnapshot | None = None
    """The program as the front end's table saw it; None is a program the engine knows
    nothing about (every call starts in Q1)."""

    def validate(self) -> None:
        if not self.call_id:
            raise InvalidCallError("call_id must be a non-empty string")
        if not self.program_id:
            raise InvalidCallError("program_id must be a non-empty string")
        if not self.thread_id:
            raise InvalidCallError("thread_id must be a non-empty string")
        if self.prompt_tokens < 0:
            raise InvalidCallError(f"prompt_tokens must be >= 0, got {self.prompt_tokens}")
        if self.max_tokens is not None and self.max_tokens < 0:
            raise InvalidCallError(f"max_tokens must be >= 0, got {self.max_tokens}")
        value = self.oracle_remaining
        if value is not None and (value < 0 or math.isnan(value)):
            raise InvalidCallError(f"oracle_remaining must be >= 0, got {value}")
        if self.snapshot is not None:
            try:
                self.snapshot.validate()
            except ProtocolError as exc:
                raise InvalidCallError(str(exc)) from None
        if self.call_id in self.parent_ids:
            raise InvalidCallError("a call cannot be its own parent")


@dataclass(slots=True, eq=False)
class CallRecord:
    """Mutable state of one call in the table."""

    call_id: str
    program_id: str
    thread_id: str
    parent_ids: tuple[str, ...]
    prompt_tokens: int
    max_tokens: int | None
    arrival_time: float
    oracle_remaining: float | None = None
    status: CallStatus = CallStatus.WAITING
    priority: float = 0.0
    """The program priority the call read at arrival (its starting queue)."""
    service: float = 0.0
    """Service this call has attained (in the scheduler's unit)."""
    wait: float = 0.0
    """Time spent waiting (queued or preempted), not counting the current wait."""
    waiting_since: float | None = None
    """When the current wait began, or None while running or done."""
    level: int = 0
    """Index of the priority queue the call sits in (0 is Q1)."""
    quantum_used: float = 0.0
    """Service attained since the call entered its current queue."""
    starve_wait_base: float = 0.0
    """W_call at the last promotion reset (the call's own waiting counter starts here)."""
    starve_service_base: float = 0.0
    """T_call at the last promotion reset."""
    num_prompt_tokens_computed: int = 0
    num_output_tokens: int = 0
    num_preemptions: int = 0
    engine_id: str | None = None
    first_scheduled_time: float | None = None
    finish_time: float | None = None
    seq: int = 0
    """Arrival order; breaks ties FCFS."""
    snapshot: ProgramSnapshot = ZERO_SNAPSHOT
    """The program's state the call was ranked by (refreshed while it waits)."""
    preempted_spans: list[tuple[float, float | None]] | None = None
    """When each preemption began and ended (None: still preempted); the first
    ``MAX_CALL_EVENTS``. None until the first preemption, so calls never preempted pay nothing."""
    promotion_times: list[float] | None = None
    """When the anti-starvation rule moved the call to Q1; the first ``MAX_CALL_EVENTS``."""

    @classmethod
    def arriving(
        cls,
        arrival: CallArrival,
        now: float,
        *,
        priority: float,
        seq: int,
        snapshot: ProgramSnapshot,
        engine_id: str | None = None,
    ) -> CallRecord:
        """The record of a call that arrives at ``now`` and starts waiting."""
        return cls(
            call_id=arrival.call_id,
            program_id=arrival.program_id,
            thread_id=arrival.thread_id,
            parent_ids=tuple(arrival.parent_ids),
            prompt_tokens=arrival.prompt_tokens,
            max_tokens=arrival.max_tokens,
            arrival_time=now,
            oracle_remaining=arrival.oracle_remaining,
            priority=priority,
            waiting_since=now,
            engine_id=engine_id,
            seq=seq,
            snapshot=snapshot,
        )

    def start(self, now: float) -> None:
        """The call runs from ``now``: its current wait ends."""
        if self.status.is_done:
            raise InvalidTransitionError(f"call {self.call_id!r} is already {self.status.name}")
        self._end_wait(now)
        if self.first_scheduled_time is None:
            self.first_scheduled_time = now
        if self.status is CallStatus.PREEMPTED:
            self._end_preemption(now)
        self.status = CallStatus.RUNNING

    def preempt(self, now: float) -> None:
        """The running call gives way and waits again from ``now``."""
        if self.status is not CallStatus.RUNNING:
            raise InvalidTransitionError(f"call {self.call_id!r} is not running")
        self.status = CallStatus.PREEMPTED
        self.waiting_since = now
        self.num_preemptions += 1
        spans = self.preempted_spans
        if spans is None:
            self.preempted_spans = [(now, None)]
        elif len(spans) < MAX_CALL_EVENTS:
            spans.append((now, None))

    def record_promotion(self, now: float) -> None:
        """The anti-starvation rule moved the waiting call to Q1 at ``now`` (the UI shows it)."""
        times = self.promotion_times
        if times is None:
            self.promotion_times = [now]
        elif len(times) < MAX_CALL_EVENTS:
            times.append(now)

    def close(self, now: float, *, aborted: bool = False) -> None:
        """The call ends (finished, or aborted / failed: its service still counts)."""
        if self.status.is_done:
            raise InvalidTransitionError(f"call {self.call_id!r} is already {self.status.name}")
        self._end_wait(now)
        if self.status is CallStatus.PREEMPTED:
            self._end_preemption(now)
        self.status = CallStatus.ABORTED if aborted else CallStatus.FINISHED
        self.finish_time = now

    def _end_preemption(self, now: float) -> None:
        spans = self.preempted_spans
        if spans and spans[-1][1] is None:
            spans[-1] = (spans[-1][0], now)

    def _end_wait(self, now: float) -> None:
        if self.waiting_since is not None:
            self.wait += max(0.0, now - self.waiting_since)
            self.waiting_since = None

    def current_wait(self, now: float) -> float:
        """Total waiting time up to ``now``."""
        if self.waiting_since is None:
            return self.wait
        return self.wait + max(0.0, now - self.waiting_since)

    @property
    def num_tokens(self) -> int:
        """Tokens whose KV the call holds when fully resident."""
        return self.prompt_tokens + self.num_output_tokens


@dataclass(slots=True, eq=False)
class ThreadRecord:
    """Per-thread metadata: the thread's active calls and its totals."""

    thread_id: str
    active_call_ids: set[str] = field(default_factory=set)
    num_calls: int = 0
    service: float = 0.0
    wait: float = 0.0
    last_arrival: float = 0.0


@dataclass(slots=True, eq=False)
class ProgramRecord:
    """One program (session): everything the paper's process table keeps, plus the DAG."""

    program_id: str
    start_time: float
    owner: str | None = None
    service: float = 0.0
    """The program's priority: summed service (PLAS) or longest critical path (ATLAS)."""
    total_service: float = 0.0
    """Sum of the service of all completed calls (T_program)."""
    total_wait: float = 0.0
    """Sum of the waiting time of all completed calls (W_program)."""
    engine_ids: set[str] = field(default_factory=set)
    pinned_engine: str | None = None
    threads: dict[str, ThreadRecord] = field(default_factory=dict)
    calls: dict[str, CallRecord] = field(default_factory=dict)
    """Every call of the program still in the table, live or finished."""
    call_path_end: dict[str, float] = field(default_factory=dict)
    """Finished call id -> its priority plus its service (for ATLAS-exact)."""
    last_arrival: float = 0.0
    last_completion: float | None = None
    num_calls: int = 0
    num_finished_calls: int = 0
    num_output_tokens: int = 0
    finished_call_ids: deque[str] = field(default_factory=deque)
    """Finished calls still kept in ``calls``, oldest first (bounded by the table)."""
    dag: ProgramDag = field(default_factory=lambda: ProgramDag(10_000))
    """Nodes, edges and threads the front end reported (bounded by the table)."""
    metadata: dict[str, str] = field(default_factory=dict)
    end_time: float | None = None
    """When the program ended (its session closed); None while it runs."""

    @property
    def active_calls(self) -> Iterator[CallRecord]:
        return (c for c in self.calls.values() if not c.status.is_done)

    @property
    def state(self) -> str:
        """``running`` while the program is in the table, ``finished`` once in its history."""
        return "running" if self.end_time is None else "finished"

    def snapshot(self, parent_ids: Sequence[str] = ()) -> ProgramSnapshot:
        """The frozen view a call of this program carries to its engine.

        ``critical_path`` is the longest path ending at the call's known parents (exact-DAG
        ATLAS), or the program-wide scalar when none of them is known.
        """
        ends = self.call_path_end
        path = max((ends[p] for p in parent_ids if p in ends), default=None)
        return ProgramSnapshot(
            service=self.service,
            critical_path=self.service if path is None else path,
            total_service=self.total_service,
            total_wait=self.total_wait,
        )


class ProcessTable:
    """Programs and calls known to the system, keyed by id.

    Methods validate their input before touching any state, so a rejected request leaves the
    table unchanged.

    Args:
        max_finished_calls_per_program: finished calls kept per program (oldest go first).
        max_dag_nodes: DAG nodes kept per program.
        history_size: ended programs kept, readable by ``finished``; 0 keeps none.
    """

    def __init__(
        self,
        *,
        max_finished_calls_per_program: int = 10_000,
        max_dag_nodes: int = 10_000,
        history_size: int = 1_000,
    ) -> None:
        if history_size < 0:
            raise ValueError("history_size must be >= 0")
        self.programs: dict[str, ProgramRecord] = {}
        self.calls: dict[str, CallRecord] = {}
        self.history: OrderedDict[str, ProgramRecord] = OrderedDict()
        """Ended programs, oldest first, at most ``history_size``."""
        self.max_finished_calls_per_program = max_finished_calls_per_program
        self.max_dag_nodes = max_dag_nodes
        self.history_size = history_size
        self.num_completions = 0
        """Calls completed or aborted so far."""
        self._seq = 0

    def __len__(self) -> int:
        return len(self.programs)

    def __contains__(self, program_id: object) -> bool:
        return program_id in self.programs

    # Programs -----------------------------------------------------------------

    def start_program(
        self, program_id: str, now: float, *, owner: str | None = None, exist_ok: bool = False
    ) -> ProgramRecord:
        """Open a session for ``program_id`` and return its row."""
        if not program_id:
            raise InvalidCallError("program_id must be a non-empty string")
        existing = self.programs.get(program_id)
        if existing is not None:
            if exist_ok:
                return existing
            raise DuplicateError(f"program {program_id!r} already exists")
        program = ProgramRecord(
            program_id=program_id,
            start_time=now,
            last_arrival=now,
            owner=owner,
            dag=ProgramDag(self.max_dag_nodes),
        )
        self.history.pop(program_id, None)
        self.programs[program_id] = program
        return program

    def program(self, program_id: str) -> ProgramRecord:
        try:
            return self.programs[program_id]
        except KeyError:
            raise UnknownProgramError(program_id) from None

    def end_program(
        self, program_id: str, now: float | None = None, *, keep: bool = True
    ) -> ProgramRecord:
        """End a program: it leaves the live table for the bounded history (end of session).

        Calls still in flight stay readable in the record; their engines' reports no longer
        change it. ``keep=False`` leaves it out of the history (a one-call untagged program).
        """
        program = self.program(program_id)
        for call_id in program.calls:
            self.calls.pop(call_id, None)
        del self.programs[program_id]
        if now is None:
            now = program.last_completion or program.last_arrival
        program.end_time = now
        if keep and self.history_size:
            self.history[program_id] = program
            while len(self.history) > self.history_size:
                self.history.popitem(last=False)
        return program

    def finished(self, program_id: str) -> ProgramRecord | None:
        """An ended program still in the history, or None."""
        return self.history.get(program_id)

    def add_thread(self, program_id: str, thread_id: str) -> ThreadRecord:
        """The row of ``thread_id`` in ``program_id``, created if the program has none yet."""
        if not thread_id:
            raise InvalidCallError("thread_id must be a non-empty string")
        program = self.program(program_id)
        thread = program.threads.get(thread_id)
        if thread is None:
            thread = program.threads[thread_id] = ThreadRecord(thread_id)
        return thread

    # Calls --------------------------------------------------------------------

    def call(self, call_id: str) -> CallRecord:
        try:
            return self.calls[call_id]
        except KeyError:
            raise UnknownCallError(call_id) from None

    def add_call(
        self,
        arrival: CallArrival,
        now: float,
        *,
        priority: float,
        snapshot: ProgramSnapshot = ZERO_SNAPSHOT,
    ) -> CallRecord:
        """Register a new call of an existing program, waiting from ``now``."""
        arrival.validate()
        program = self.program(arrival.program_id)
        if arrival.call_id in self.calls:
            raise DuplicateError(f"call {arrival.call_id!r} already exists")
        self._seq += 1
        call = CallRecord.arriving(
            arrival, now, priority=priority, seq=self._seq, snapshot=snapshot
        )
        self.calls[call.call_id] = call
        program.calls[call.call_id] = call
        program.num_calls += 1
        program.last_arrival = now
        thread = self.add_thread(program.program_id, call.thread_id)
        thread.active_call_ids.add(call.call_id)
        thread.num_calls += 1
        thread.last_arrival = now
        return call

    def mark_running(self, call: CallRecord, now: float) -> None:
        call.start(now)

    def mark_preempted(self, call: CallRecord, now: float) -> None:
        call.preempt(now)

    def complete_call(self, call: CallRecord, now: float, *, aborted: bool = False) -> None:
        """Close a call and fold its wait and service into its program and thread."""
        call.close(now, aborted=aborted)
        self.num_completions += 1
        program = self.programs.get(call.program_id)
        if program is None:
            return
        program.total_wait += call.wait
        program.total_service += call.service
        program.num_finished_calls += 1
        program.num_output_tokens += call.num_output_tokens
        program.last_completion = now
        thread = program.threads.get(call.thread_id)
        if thread is not None:
            thread.active_call_ids.discard(call.call_id)
            thread.service += call.service
            thread.wait += call.wait
        self.calls.pop(call.call_id, None)
        program.finished_call_ids.append(call.call_id)
        self._trim_finished(program)

    def _trim_finished(self, program: ProgramRecord) -> None:
        kept = program.finished_call_ids
        while len(kept) > self.max_finished_calls_per_program:
            old = kept.popleft()
            program.calls.pop(old, None)
            program.call_path_end.pop(old, None)
