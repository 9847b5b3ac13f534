"""Workloads: program generators for the simulator, the bench command and real engines.

>>> from autellix_backend.workloads import make_workload
>>> programs = make_workload("sharegpt", 3, seed=1, arrivals="poisson", rate=2.0)
>>> [p.workload for p in programs]
['sharegpt', 'sharegpt', 'sharegpt']
"""

from __future__ import annotations

from autellix_backend.workloads.arrivals import ArrivalMode, arrival_times, with_arrivals
from autellix_backend.workloads.registry import WORKLOADS, UnknownWorkloadError, make_workload
from autellix_backend.workloads.spec import CallSpec, ProgramSpec, PromptSegment
from autellix_backend.workloads.stats import PAPER_STATS, WorkloadStats, workload_stats

__all__ = [
    "PAPER_STATS",
    "WORKLOADS",
    "ArrivalMode",
    "CallSpec",
    "ProgramSpec",
    "PromptSegment",
    "UnknownWorkloadError",
    "WorkloadStats",
    "arrival_times",
    "make_workload",
    "with_arrivals",
    "workload_stats",
]
