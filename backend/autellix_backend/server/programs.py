"""Program sessions on top of the gateway's process table, the one owner of program state.

The core's ``ProgramTracker`` owns priorities: a call takes its program's snapshot when it
arrives (it travels to the engine as ``ProgramTag.snapshot``), the engine-reported service is
folded back when it ends, and the program's new snapshot is pushed to the engines' queues.
This module adds what a service needs around it: ownership by API key, untagged single-call
programs, idle expiry, a bound on the table's size, and ended programs kept readable.

Program ids are namespaced by owner inside the table (``<owner>/<id>``) and call ids by
program (``<program> <call>``), so two keys may use the same program ids, two programs the
same call ids, and one key can never address another's programs.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from autellix_backend.core import (
    CallArrival,
    CallRecord,
    ProcessTable,
    ProgramRecord,
    ProgramTracker,
)
from autellix_backend.core.dag import DagNode, ProgramDag
from autellix_backend.core.process_table import MAX_CALL_EVENTS
from autellix_backend.engines.base import EngineUsage, ProgramTag
from autellix_backend.server.config import Limits
from autellix_backend.server.errors import APIError, program_not_found
from autellix_backend.server.tagging import CallTags
from autellix_protocol.report import event_spans

RECENTLY_ENDED = 10_000
"""Ended program ids remembered so that late spans do not bring them back."""


@dataclass(slots=True, eq=False)
class Session:
    """The gateway's side of one program row."""

    key: str
    """Program id inside the process table (namespaced by owner)."""
    program_id: str
    """Program id as its client knows it."""
    owner: str | None
    created: float
    """Unix time the program started."""
    last_activity: float
    """Monotonic time of the last call, completion or span."""
    record: ProgramRecord
    """The program's row in the process table (kept in its history once ended)."""
    ephemeral: bool = False
    """An untagged call's own program, ended with the call."""
    finished: bool = False
    """The front end reported the program's end (its program span closed)."""
    failed: bool = False
    """The front end reported that the program failed (its program span ended in error)."""

    @property
    def dag(self) -> ProgramDag:
        return self.record.dag

    @property
    def metadata(self) -> dict[str, str]:
        return self.record.metadata

    @property
    def ended(self) -> bool:
        """The session is closed (``DELETE``, idle expiry, or an untagged call's end)."""
        return self.record.end_time is not None


ProgramEndHook = Callable[[Session, ProgramRecord], None]


class ProgramRegistry:
    """Programs, their owners and DAGs, backed by one global ``ProcessTable``."""

    def __init__(
        self,
        policy: str,
        limits: Limits,
        *,
        idle_timeout_s: float,
        on_end: ProgramEndHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        table = ProcessTable(
            max_finished_calls_per_program=limits.max_calls_per_program,
            max_dag_nodes=limits.max_dag_nodes,
            history_size=limits.program_history,
        )
        self.tracker = ProgramTracker(policy, table)
        self.table = table
        self.limits = limits
        self.idle_timeout_s = idle_timeout_s
        self.clock = clock
        self._on_end = on_end
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._ended: OrderedDict[str, Session] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    # Sessions ------------------------------------------------------------------

    def start(
        self,
        owner: str | None,
        program_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> tuple[Session, bool]:
        """Open a program session (``POST /v1/programs``); returns it and whether it is new.

        Starting a program the caller already has is not an error (its first call may have
        started it): the session is returned as it is, with ``metadata`` added.
        """
        program_id = program_id or f"prog-{uuid.uuid4().hex}"
        key = _key(owner, program_id)
        session = self._sessions.get(key)
        created = session is None
        if session is None:
            session = self._open(key, program_id, owner)
        else:
            self._touch(session)
        session.metadata.update(metadata or {})
        return session, created

    def get(self, owner: str | None, program_id: str) -> Session:
        """The caller's program ``program_id``; 404 if absent or another key's."""
        session = self._sessions.get(_key(owner, program_id))
        if session is None:
            raise program_not_found(program_id)
        return session

    def lookup(self, owner: str | None, program_id: str) -> Session:
        """Like ``get``, but an ended program still in the table's history is found too."""
        key = _key(owner, program_id)
        session = self._sessions.get(key)
        if session is None:
            session = self._ended.get(key)
            if session is None or self.table.finished(key) is not session.record:
                raise program_not_found(program_id)
        return session

    def find(self, owner: str | None, program_id: str) -> Session | None:
        return self._sessions.get(_key(owner, program_id))

    def sessions(self, owner: str | None) -> list[Session]:
        """The caller's programs, most recently active last."""
        return [s for s in self._sessions.values() if s.owner == owner]

    def record(self, session: Session) -> ProgramRecord:
        return session.record

    def end(self, owner: str | None, program_id: str) -> Session:
        """End a program (``DELETE``): its row leaves the table; calls in flight still finish."""
        session = self.get(owner, program_id)
        self._close(session)
        return session

    def ensure(self, owner: str | None, program_id: str) -> Session | None:
        """The program, started if new; None if it ended recently (a late report)."""
        key = _key(owner, program_id)
        session = self._sessions.get(key)
        if session is not None:
            self._touch(session)
            return session
        if key in self._ended:
            return None
        return self._open(key, program_id, owner)

    def is_idle(self, session: Session) -> bool:
        """True when the program has no call waiting or running."""
        program = self.table.programs.get(session.key)
        return program is None or not any(t.active_call_ids for t in program.threads.values())

    def reap(self) -> int:
        """End programs idle for longer than the idle timeout; returns how many."""
        cutoff = self.clock() - self.idle_timeout_s
        stale = []
        for session in self._sessions.values():
            if session.last_activity > cutoff:
                break
            if self.is_idle(session):
                stale.append(session)
        for session in stale:
            self._close(session)
        return len(stale)

    # Calls ---------------------------------------------------------------------

    def open_call(
        self,
        owner: str | None,
        tags: CallTags,
        *,
        prompt_tokens: int,
        max_tokens: int | None,
        choose_engine: Callable[[str], str],
    ) -> tuple[Session, CallRecord, ProgramTag]:
        """Admit a call: find or start its program, pick its engine, register it in the table.

        ``choose_engine`` receives the program's table id; if it raises, nothing changes.
        """
        ephemeral = tags.program_id is None
        program_id = tags.program_id or f"anon-{uuid.uuid4().hex}"
        key = _key(owner, program_id)
        session = self._sessions.get(key)
        call_id = _call_key(key, tags.call_id or f"call-{uuid.uuid4().hex}")
        if call_id in self.table.calls:
            raise APIError(409, f"call {tags.call_id!r} is already in flight", code="conflict")
        created = session is None
        engine_id = choose_engine(key)
        if session is None:
            session = self._open(key, program_id, owner, ephemeral=ephemeral)
        arrival = CallArrival(
            call_id=call_id,
            program_id=key,
            thread_id=tags.thread_id,
            parent_ids=tuple(_call_key(key, p) for p in tags.parent_ids),
            prompt_tokens=prompt_tokens,
            max_tokens=max_tokens,
        )
        try:
            call = self.tracker.admit(arrival, self.clock(), engine_id=engine_id)
        except Exception:
            if created:
                self._close(session)
            raise
        self._touch(session)
        outer = _strip_call(call_id)
        session.dag.upsert(
            DagNode(outer, "llm", thread_id=tags.thread_id), parent_ids=tags.parent_ids
        )
        tag = ProgramTag(
            program_id=key,
            thread_id=call.thread_id,
            call_id=call_id,
            parent_ids=call.parent_ids,
            snapshot=call.snapshot,
        )
        return session, call, tag

    def call_started(self, call: CallRecord) -> None:
        """The engine sent the call's first output: its wait ends."""
        if not call.status.is_done and call.first_scheduled_time is None:
            self.table.mark_running(call, self.clock())

    def close_call(self, call: CallRecord, usage: EngineUsage | None, *, status: str) -> None:
        """Fold the engine-reported service and tokens back and close the call.

        ``status`` is ``finished``, ``aborted`` (client left) or ``error`` (engine failed). A
        call that ends with no usage (a stream cut short) counts the time it ran as its
        service, so a client that aborts and retries does not keep top priority.
        """
        if call.status.is_done:
            return
        program = self.table.programs.get(call.program_id)
        if program is None or program.calls.get(call.call_id) is not call:
            return  # its program ended (and may have restarted) while the call was in flight
        now = self.clock()
        if usage is not None:
            service = usage.service
            call.num_output_tokens = usage.completion_tokens
        else:
            service = consumed_service(call, now)
        self.tracker.complete(call, now, aborted=status != "finished", service=service)
        session = self._sessions.get(call.program_id)
        if session is None:
            return
        session.dag.set_status(_strip_call(call.call_id), status)
        self._touch(session)
        if session.ephemeral:
            self._close(session)

    # Internals -----------------------------------------------------------------

    def _open(
        self, key: str, program_id: str, owner: str | None, *, ephemeral: bool = False
    ) -> Session:
        self._make_room()
        now = self.clock()
        record = self.table.start_program(key, now, owner=owner)
        session = Session(
            key=key,
            program_id=program_id,
            owner=owner,
            created=time.time(),
            last_activity=now,
            record=record,
            ephemeral=ephemeral,
        )
        self._sessions[key] = session
        self._ended.pop(key, None)
        return session

    def _touch(self, session: Session) -> None:
        session.last_activity = self.clock()
        self._sessions.move_to_end(session.key)

    def _make_room(self) -> None:
        if len(self._sessions) < self.limits.max_programs:
            return
        for session in self._sessions.values():
            if self.is_idle(session):
                self._close(session)
                return
        raise APIError(
            429,
            f"the process table is full ({self.limits.max_programs} programs with calls in flight)",
            type="rate_limit_error",
            code="too_many_programs",
        )

    def _close(self, session: Session) -> None:
        if self._sessions.pop(session.key, None) is None:
            return
        program = self.table.programs.get(session.key)
        if program is not None:
            self.table.end_program(session.key, self.clock(), keep=not session.ephemeral)
            if self._on_end is not None:
                self._on_end(session, program)
        if not session.ephemeral:
            self._ended[session.key] = session
            self._ended.move_to_end(session.key)
            if len(self._ended) > RECENTLY_ENDED:
                self._ended.popitem(last=False)

    def add_thread(self, session: Session, thread_id: str, parent_thread_id: str | None) -> None:
        """Record a thread the front end reported (it may have issued no LLM call yet)."""
        if session.key in self.table:
            self.table.add_thread(session.key, thread_id)
        session.dag.add_thread(thread_id, parent_thread_id)


def _key(owner: str | None, value: str) -> str:
    return value if owner is None else f"{owner}/{value}"


def _call_key(program_key: str, call_id: str) -> str:
    """Call ids are scoped by program; a space cannot occur in an id, so this is unambiguous."""
    return f"{program_key} {call_id}"


def _strip_call(key: str) -> str:
    """Inverse of ``_call_key``: a call id as its client knows it."""
    return key.rpartition(" ")[2]


def consumed_service(call: CallRecord, now: float) -> float:
    """Service of a call whose engine report was lost: the time since it started running."""
    started = call.first_scheduled_time
    return max(call.service, now - started) if started is not None else call.service


def outer_call_id(key: str) -> str:
    """A call's table id as its client knows it."""
    return _strip_call(key)


def place_engine_events(call: CallRecord, report: Mapping[str, Any]) -> None:
    """Put an engine report's preemption spans and promotion times (``ServiceReport``'s
    offsets after the call's arrival on its engine) on the table's clock, counting from the
    call's arrival here (it is sent to its engine at once). Malformed values are ignored."""
    try:
        spans = event_spans(report.get("preemptions") or ())
        promotions = [float(t) for t in report.get("promotions") or ()]
    except (TypeError, ValueError):
        return
    t0 = call.arrival_time
    if spans:
        call.preempted_spans = [(t0 + s, t0 + e) for s, e in spans[:MAX_CALL_EVENTS]]
    if promotions:
        call.promotion_times = [t0 + t for t in promotions[:MAX_CALL_EVENTS]]
