"""The scheduling core: process table, policies, discretised queues. No I/O, no frameworks.

>>> from autellix_backend.core import Scheduler, SchedulerConfig, CallArrival, SlotBudget
>>> sched = Scheduler(SchedulerConfig(policy="plas"))
>>> _ = sched.table.start_program("p1", now=0.0)
>>> _ = sched.add_call(CallArrival(call_id="c1", program_id="p1", prompt_tokens=8), now=0.0)
>>> [c.call_id for c in sched.schedule(SlotBudget(max_num_seqs=4), now=0.0).scheduled]
['c1']
"""

from __future__ import annotations

from autellix_backend.core.budget import BatchBudget, SlotBudget
from autellix_backend.core.config import Policy, QueueOrder, SchedulerConfig, ServiceUnit
from autellix_backend.core.errors import (
    AutellixError,
    DuplicateError,
    InvalidCallError,
    InvalidTransitionError,
    UnknownCallError,
    UnknownPolicyError,
    UnknownProfileError,
    UnknownProgramError,
)
from autellix_backend.core.outputs import CallProgress, SchedulerDecision
from autellix_backend.core.policies import PriorityPolicy, make_policy
from autellix_backend.core.process_table import (
    CallArrival,
    CallRecord,
    CallStatus,
    ProcessTable,
    ProgramRecord,
    ThreadRecord,
)
from autellix_backend.core.queues import MultiLevelQueue
from autellix_backend.core.retention import (
    Hold,
    KVRetention,
    RetentionLedger,
    RetentionRule,
    ToolDurations,
)
from autellix_backend.core.scheduler import Scheduler
from autellix_backend.core.tracker import ProgramTracker

__all__ = [
    "AutellixError",
    "BatchBudget",
    "CallArrival",
    "CallProgress",
    "CallRecord",
    "CallStatus",
    "DuplicateError",
    "Hold",
    "InvalidCallError",
    "InvalidTransitionError",
    "KVRetention",
    "MultiLevelQueue",
    "Policy",
    "PriorityPolicy",
    "ProcessTable",
    "ProgramRecord",
    "ProgramTracker",
    "QueueOrder",
    "RetentionLedger",
    "RetentionRule",
    "Scheduler",
    "SchedulerConfig",
    "SchedulerDecision",
    "ServiceUnit",
    "SlotBudget",
    "ThreadRecord",
    "ToolDurations",
    "UnknownCallError",
    "UnknownPolicyError",
    "UnknownProfileError",
    "UnknownProgramError",
    "make_policy",
]
