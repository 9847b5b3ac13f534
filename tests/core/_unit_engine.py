"""A minimal unit-time engine for property tests of the core alone.

Each step lasts 1.0 and every scheduled call decodes one token. It records enough to check
that no call is lost or run twice and how long each call waited in one stretch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from autellix_backend.core import CallArrival, CallProgress, SchedulerConfig, SlotBudget
from tests.core._front import Front


@dataclass
class UnitProgram:
    program_id: str
    arrival: int
    call_lengths: Sequence[int]


@dataclass
class UnitRun:
    finished_calls: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    program_finish: dict[str, int] = field(default_factory=dict)
    longest_wait_stretch: dict[str, int] = field(default_factory=dict)
    wait_bound_violations: list[str] = field(default_factory=list)
    steps: int = 0


def run_unit_engine(
    programs: Sequence[UnitProgram],
    config: SchedulerConfig,
    *,
    batch_size: int,
    horizon: int,
    wait_bound_slack: float | None = None,
) -> UnitRun:
    """Drive ``programs`` through one scheduler until all finish or ``horizon`` steps pass."""
    sched = Front(config)
    run = UnitRun()
    length: dict[str, int] = {}
    next_index = {p.program_id: 0 for p in programs}
    by_id = {p.program_id: p for p in programs}
    stretch: dict[str, int] = {}

    def release(program: UnitProgram, now: int) -> None:
        i = next_index[program.program_id]
        call_id = f"{program.program_id}/{i}"
        sched.add_call(CallArrival(call_id=call_id, program_id=program.program_id), now=now)
        length[call_id] = program.call_lengths[i]
        run.tokens[call_id] = 0
        stretch[call_id] = 0

    for t in range(horizon):
        for program in programs:
            if program.arrival == t:
                sched.table.start_program(program.program_id, now=t)
                release(program, t)
        decision = sched.schedule(SlotBudget(batch_size), now=t)
        ran = [c.call_id for c in decision.scheduled]
        for call_id in list(stretch):
            if call_id in ran:
                stretch[call_id] = 0
                continue
            stretch[call_id] += 1
            longest = max(run.longest_wait_stretch.get(call_id, 0), stretch[call_id])
            run.longest_wait_stretch[call_id] = longest
            if wait_bound_slack is not None and config.starvation_beta is not None:
                call = sched.calls[call_id]
                program = sched.table.programs[call.program_id]
                service = program.total_service + call.service
                if service > 0 and stretch[call_id] > (
                    config.starvation_beta * service + wait_bound_slack
                ):
                    run.wait_bound_violations.append(call_id)
        sched.update_from_step([CallProgress(c, num_decode_tokens=1) for c in ran], 1.0, t + 1)
        for call_id in ran:
            run.tokens[call_id] += 1
            if run.tokens[call_id] == length[call_id]:
                sched.finish_call(call_id, now=t + 1)
                run.finished_calls[call_id] = run.finished_calls.get(call_id, 0) + 1
                del stretch[call_id]
                pid = call_id.split("/")[0]
                next_index[pid] += 1
                if next_index[pid] < len(by_id[pid].call_lengths):
                    release(by_id[pid], t + 1)
                else:
                    run.program_finish[pid] = t + 1
                    sched.table.end_program(pid)
        run.steps = t + 1
        if len(run.program_finish) == len(programs):
            break
    return run
