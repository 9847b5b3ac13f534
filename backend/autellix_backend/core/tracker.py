"""Program-level accounting without a queue: the backend's global view of every program.

The scheduler of an engine and the backend's gateway both go through a ``ProgramTracker``:
it reads a new call's starting priority from its program and folds a finished call's service
back into the program, by the rules of the configured policy.
"""

from __future__ import annotations

from autellix_backend.core.config import Policy
from autellix_backend.core.policies import PriorityPolicy, make_policy
from autellix_backend.core.process_table import CallArrival, CallRecord, ProcessTable


class ProgramTracker:
    """A process table plus the policy that turns it into priorities."""

    def __init__(self, policy: Policy | str | PriorityPolicy, table: ProcessTable | None = None):
        self.policy = policy if isinstance(policy, PriorityPolicy) else make_policy(policy)
        self.table = table if table is not None else ProcessTable()

    def admit(
        self, arrival: CallArrival, now: float, *, engine_id: str | None = None
    ) -> CallRecord:
        """Register a call of an existing program with the priority its program has now."""
        arrival.validate()
        program = self.table.program(arrival.program_id)
        priority = self.policy.arrival_priority(program, arrival)
        call = self.table.add_call(arrival, now, priority=priority)
        if engine_id is not None:
            call.engine_id = engine_id
            program.engine_ids.add(engine_id)
        return call

    def complete(self, call: CallRecord, now: float, *, aborted: bool = False) -> None:
        """Close ``call`` and update its program's priority (aborted calls count what they used)."""
        self.table.complete_call(call, now, aborted=aborted)
        program = self.table.programs.get(call.program_id)
        if program is not None and (not aborted or call.service > 0):
            self.policy.on_call_finished(program, call)
