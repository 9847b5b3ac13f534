"""The global process table: programs, their threads and their calls.

Plain data and bookkeeping only: priorities are the policies' business and ordering is the
scheduler's. One table can be shared by the schedulers of several engines, which is how the
backend gives every engine the same program-level view.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum

from autellix_backend.core.errors import (
    DuplicateError,
    InvalidCallError,
    InvalidTransitionError,
    UnknownCallError,
    UnknownProgramError,
)


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
    service_at_arrival: float | None = None
    """Program priority read by a remote front end; overrides the table's own view."""

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
        for name in ("oracle_remaining", "service_at_arrival"):
            value = getattr(self, name)
            if value is not None and (value < 0 or math.isnan(value)):
                raise InvalidCallError(f"{name} must be >= 0, got {value}")
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

    @property
    def active_calls(self) -> Iterator[CallRecord]:
        return (c for c in self.calls.values() if not c.status.is_done)


class ProcessTable:
    """Programs and calls known to the system, keyed by id.

    Methods validate their input before touching any state, so a rejected request leaves the
    table unchanged.
    """

    def __init__(self, *, max_finished_calls_per_program: int = 10_000) -> None:
        self.programs: dict[str, ProgramRecord] = {}
        self.calls: dict[str, CallRecord] = {}
        self.max_finished_calls_per_program = max_finished_calls_per_program
        self.num_completions = 0
        """Calls completed or aborted so far (schedulers sharing the table watch it)."""
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
        program = ProgramRecord(program_id=program_id, start_time=now, last_arrival=now)
        program.owner = owner
        self.programs[program_id] = program
        return program

    def program(self, program_id: str) -> ProgramRecord:
        try:
            return self.programs[program_id]
        except KeyError:
            raise UnknownProgramError(program_id) from None

    def end_program(self, program_id: str) -> ProgramRecord:
        """Remove a program and all its calls from the table (end of session)."""
        program = self.program(program_id)
        for call_id in program.calls:
            self.calls.pop(call_id, None)
        del self.programs[program_id]
        return program

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

    def add_call(self, arrival: CallArrival, now: float, *, priority: float) -> CallRecord:
        """Register a new call of an existing program, waiting from ``now``."""
        arrival.validate()
        program = self.program(arrival.program_id)
        if arrival.call_id in self.calls:
            raise DuplicateError(f"call {arrival.call_id!r} already exists")
        self._seq += 1
        call = CallRecord(
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
            seq=self._seq,
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
        if call.status.is_done:
            raise InvalidTransitionError(f"call {call.call_id!r} is already {call.status.name}")
        if call.waiting_since is not None:
            call.wait += max(0.0, now - call.waiting_since)
            call.waiting_since = None
        if call.first_scheduled_time is None:
            call.first_scheduled_time = now
        call.status = CallStatus.RUNNING

    def mark_preempted(self, call: CallRecord, now: float) -> None:
        if call.status is not CallStatus.RUNNING:
            raise InvalidTransitionError(f"call {call.call_id!r} is not running")
        call.status = CallStatus.PREEMPTED
        call.waiting_since = now
        call.num_preemptions += 1

    def complete_call(self, call: CallRecord, now: float, *, aborted: bool = False) -> None:
        """Close a call and fold its wait and service into its program and thread."""
        if call.status.is_done:
            raise InvalidTransitionError(f"call {call.call_id!r} is already {call.status.name}")
        if call.waiting_since is not None:
            call.wait += max(0.0, now - call.waiting_since)
            call.waiting_since = None
        call.status = CallStatus.ABORTED if aborted else CallStatus.FINISHED
        call.finish_time = now
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
