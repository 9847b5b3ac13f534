"""ATLAS: program priority is the longest critical path observed so far.

``ATLASPolicy`` is the paper's implementation: one scalar per program, so parallel threads of
a program share one priority and run together. ``ATLASExactPolicy`` uses the real DAG the
front end reports: a call's priority is ``max over parents k of (priority(k) + service(k))``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autellix_backend.core.config import Policy
from autellix_backend.core.policies.base import PriorityPolicy

if TYPE_CHECKING:
    from autellix_backend.core.process_table import CallArrival, CallRecord, ProgramRecord
    from autellix_protocol.snapshot import ProgramSnapshot


class ATLASPolicy(PriorityPolicy):
    name = Policy.ATLAS

    def priority(self, snapshot: ProgramSnapshot, arrival: CallArrival) -> float:
        return snapshot.service

    def on_call_finished(self, program: ProgramRecord, call: CallRecord) -> None:
        program.service = max(program.service, call.priority + call.service)


class ATLASExactPolicy(ATLASPolicy):
    """Critical-path priority from the true parents of each call.

    The front end's snapshot carries the path ending at the call's parents; a call with no
    known parents falls back to the program-wide scalar, which is 0 for the roots of a fresh
    program and the paper's ATLAS value for a front end that sends no DAG.
    """

    name = Policy.ATLAS_EXACT

    def priority(self, snapshot: ProgramSnapshot, arrival: CallArrival) -> float:
        return snapshot.critical_path

    def on_call_finished(self, program: ProgramRecord, call: CallRecord) -> None:
        end = call.priority + call.service
        program.call_path_end[call.call_id] = end
        program.service = max(program.service, end)
