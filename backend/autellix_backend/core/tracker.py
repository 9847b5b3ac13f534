"""Program accounting at the front end: the one process table plus the policy's rules.

The gateway, the simulator's front end and the replay driver each own one ``ProgramTracker``.
It admits calls into the table with the snapshot their engine will rank them by, folds each
ended call's service (reported by its engine) back into the program, and pushes the program's
new snapshot to the engine queues it can reach, so their waiting calls see it too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from autellix_backend.core.config import Policy
from autellix_backend.core.policies import PriorityPolicy, make_policy
from autellix_backend.core.process_table import CallArrival, CallRecord, CallStatus, ProcessTable
from autellix_protocol.snapshot import ProgramSnapshot

SnapshotSink = Callable[[str, ProgramSnapshot], object]
"""Receives ``(program_id, snapshot)`` whenever a program's state changes."""


class ProgramTracker:
    """A process table plus the policy that turns it into snapshots and priorities."""

    def __init__(self, policy: Policy | str | PriorityPolicy, table: ProcessTable | None = None):
        self.policy = policy if isinstance(policy, PriorityPolicy) else make_policy(policy)
        self.table = table if table is not None else ProcessTable()
        self._sinks: list[SnapshotSink] = []

    def subscribe(self, sink: SnapshotSink) -> None:
        """Send every changed program snapshot to ``sink`` (an engine queue's ``refresh``)."""
        self._sinks.append(sink)

    def admit(
        self, arrival: CallArrival, now: float, *, engine_id: str | None = None
    ) -> CallRecord:
        """Register a call of an existing program; its record carries the snapshot to send.

        The returned record's ``snapshot`` is what the engine ranks the call by, and its
        ``priority`` the value the policy computes from it (the engine computes the same).
        """
        arrival.validate()
        program = self.table.program(arrival.program_id)
        snapshot = program.snapshot(arrival.parent_ids)
        priority = self.policy.priority(snapshot, arrival)
        call = self.table.add_call(arrival, now, priority=priority, snapshot=snapshot)
        if engine_id is not None:
            call.engine_id = engine_id
            program.engine_ids.add(engine_id)
        return call

    def engine_arrival(self, call: CallRecord, arrival: CallArrival) -> CallArrival:
        """``arrival`` with the snapshot the table gave ``call``, ready for its engine."""
        return replace(arrival, snapshot=call.snapshot)

    def report(self, ended: CallRecord, now: float) -> CallRecord:
        """Fold an in-process engine queue's ended call (its service and wait) into the table.

        Returns the table's record of the call.
        """
        call = self.table.call(ended.call_id)
        self.complete(
            call,
            now,
            aborted=ended.status is CallStatus.ABORTED,
            service=ended.service,
            wait=ended.wait,
        )
        call.num_preemptions = ended.num_preemptions
        call.preempted_spans = ended.preempted_spans
        call.promotion_times = ended.promotion_times
        return call

    def complete(
        self,
        call: CallRecord,
        now: float,
        *,
        aborted: bool = False,
        service: float | None = None,
        wait: float | None = None,
    ) -> None:
        """Close ``call`` with what its engine reported and update its program.

        Args:
            service: service the engine measured (aborted and failed calls count theirs).
            wait: time the engine kept the call waiting; replaces the table's own measure.

        The program's new snapshot goes to every subscribed engine queue.
        """
        if service is not None:
            call.service = max(call.service, service)
        if wait is not None:
            call.wait = wait
            call.waiting_since = None
        self.table.complete_call(call, now, aborted=aborted)
        program = self.table.programs.get(call.program_id)
        if program is None:
            return
        if not aborted or call.service > 0:
            self.policy.on_call_finished(program, call)
        if self._sinks:
            snapshot = program.snapshot()
            for sink in self._sinks:
                sink(call.program_id, snapshot)
