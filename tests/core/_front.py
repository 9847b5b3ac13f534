"""One front end (process table + policy) driving one engine queue, for core unit tests."""

from __future__ import annotations

from typing import Any

from autellix_backend.core import (
    CallArrival,
    CallRecord,
    ProcessTable,
    ProgramTracker,
    Scheduler,
    SchedulerConfig,
)


class Front:
    """The table's owner and one engine's ``Scheduler``, wired as the simulator wires them.

    ``add_call`` admits into the table and queues with the snapshot; ``finish_call`` and
    ``abort_call`` report the engine's record back. Everything else is the scheduler's.
    """

    def __init__(
        self,
        config: SchedulerConfig | None = None,
        *,
        engine_id: str = "engine-0",
        tracker: ProgramTracker | None = None,
    ) -> None:
        self.config = config or SchedulerConfig()
        self.tracker = tracker or ProgramTracker(self.config.policy, ProcessTable())
        self.table = self.tracker.table
        self.sched = Scheduler(self.config, engine_id=engine_id)
        self.tracker.subscribe(self.sched.refresh)

    def add_call(self, arrival: CallArrival, now: float) -> CallRecord:
        record = self.tracker.admit(arrival, now, engine_id=self.sched.engine_id)
        try:
            return self.sched.add_call(self.tracker.engine_arrival(record, arrival), now)
        except Exception:
            self.table.complete_call(record, now, aborted=True)
            raise

    def finish_call(self, call_id: str, now: float) -> CallRecord:
        ended = self.sched.finish_call(call_id, now)
        self.tracker.report(ended, now)
        return ended

    def abort_call(self, call_id: str, now: float) -> CallRecord:
        ended = self.sched.abort_call(call_id, now)
        self.tracker.report(ended, now)
        return ended

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sched, name)
