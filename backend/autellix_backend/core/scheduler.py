"""The scheduling core: one engine's queue of calls, ordered by a program-aware policy.

An engine drives it with four calls, in the shape of vLLM's scheduler:

1. ``add_call(arrival, now)`` when a request arrives,
2. ``schedule(budget, now)`` before each step: what runs, what is preempted,
3. ``update_from_step(progress, step_time, now)`` after the step: attained service, demotion,
4. ``finish_call(call_id, now)`` (or ``abort_call``) when a call ends.

The vLLM plugin, the simulated engine and the backend all use this class; it does no I/O.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

from autellix_backend.core.config import QueueOrder, SchedulerConfig, ServiceUnit
from autellix_backend.core.errors import InvalidCallError, UnknownCallError
from autellix_backend.core.outputs import CallProgress, SchedulerDecision
from autellix_backend.core.process_table import (
    CallArrival,
    CallRecord,
    ProcessTable,
    ProgramRecord,
)
from autellix_backend.core.queues import MultiLevelQueue
from autellix_backend.core.tracker import ProgramTracker

if TYPE_CHECKING:
    from autellix_backend.core.budget import BatchBudget


class Scheduler:
    """Program-aware scheduler for the calls of one engine.

    Args:
        config: policy and queue settings.
        table: the process table to read program state from and write it to; pass the same
            table to the schedulers of several engines to give them one global view.
        engine_id: recorded on calls and programs that this scheduler serves.
    """

    def __init__(
        self,
        config: SchedulerConfig | None = None,
        *,
        table: ProcessTable | None = None,
        engine_id: str = "engine-0",
    ) -> None:
        self.config = config or SchedulerConfig()
        self.tracker = ProgramTracker(self.config.policy, table)
        self.policy = self.tracker.policy
        self.table = self.tracker.table
        self.engine_id = engine_id
        discretised = self.policy.discretised
        self.queue = MultiLevelQueue(self.config if discretised else _single_queue(self.config))
        self.running: dict[str, CallRecord] = {}
        self.num_preemptions = 0
        self.num_promotions = 0
        # Anti-starvation: the time at which each waiting call below Q1 would reach beta,
        # in a lazy heap. Entries are valid while they match ``_deadline``.
        self._deadline: dict[str, float] = {}
        self._deadline_heap: list[tuple[float, int, str]] = []
        self._owns_table = table is None
        self._rescan: list[CallRecord] = []
        self._completions_seen = 0
        self._quanta = (
            [self.config.quantum(i) for i in range(self.config.num_queues)]
            if discretised
            else [math.inf]
        )

    # Arrivals and completions --------------------------------------------------

    def add_call(self, arrival: CallArrival, now: float) -> CallRecord:
        """Admit a new call of an existing program; it waits until ``schedule`` picks it."""
        call = self.tracker.admit(arrival, now, engine_id=self.engine_id)
        level = self.queue.level_for(call.priority) if self.policy.discretised else 0
        self.queue.push(call, level)
        self._arm_deadline(call)
        return call

    def finish_call(self, call_id: str, now: float) -> CallRecord:
        """Close a completed call and fold its service into its program's priority."""
        call = self._own(call_id)
        self._detach(call)
        self.tracker.complete(call, now)
        self._completions_seen += 1
        self._rearm_program(call.program_id)
        return call

    def abort_call(self, call_id: str, now: float) -> CallRecord:
        """Drop a call (client gone, engine failed); its service still counts for its program."""
        call = self._own(call_id)
        self._detach(call)
        self.tracker.complete(call, now, aborted=True)
        self._completions_seen += 1
        self._rearm_program(call.program_id)
        return call

    # Scheduling ----------------------------------------------------------------

    def schedule(self, budget: BatchBudget, now: float) -> SchedulerDecision:
        """Choose the calls that run in the next step, and the running calls to preempt."""
        if not self.running and not len(self.queue):
            return SchedulerDecision.make_empty()
        promoted = self._promote_starving(now)
        preempt = self.config.preemption and self.policy.preemptive
        order: Iterable[CallRecord]
        if preempt and self.policy.discretised and self.config.queue_order is QueueOrder.FIFO:
            order = self.queue
        elif not preempt and (self.policy.discretised or self.policy.arrival_ordered):
            running = self.running
            order = itertools.chain(
                list(running.values()), (c for c in self.queue if c.call_id not in running)
            )
        else:
            order = self._priority_order()
            if not preempt:
                order = [c for c in order if c.call_id in self.running] + [
                    c for c in order if c.call_id not in self.running
                ]
        scheduled = self._fill(order, budget)
        chosen = {c.call_id for c in scheduled}
        preempted: list[CallRecord] = []
        for call in list(self.running.values()):
            if call.call_id not in chosen:
                self.table.mark_preempted(call, now)
                del self.running[call.call_id]
                preempted.append(call)
                if self.config.requeue_preempted:
                    self.queue.requeue(call)
                self._arm_deadline(call)
        started: list[CallRecord] = []
        for call in scheduled:
            if call.call_id not in self.running:
                self.table.mark_running(call, now)
                self.running[call.call_id] = call
                started.append(call)
        self.num_preemptions += len(preempted)
        return SchedulerDecision(
            scheduled=tuple(scheduled),
            started=tuple(started),
            preempted=tuple(preempted),
            promoted_ids=promoted,
        )

    def update_from_step(
        self, progress: Iterable[CallProgress], step_time: float, now: float
    ) -> None:
        """Credit service to the calls that ran in a step and demote those past their quantum."""
        if step_time < 0:
            raise InvalidCallError(f"step_time must be >= 0, got {step_time}")
        calls = self.table.calls
        resolved: list[tuple[CallRecord, CallProgress]] = []
        for item in progress:
            if item.num_prefill_tokens < 0 or item.num_decode_tokens < 0:
                raise InvalidCallError("token counts in a step must be >= 0")
            call = calls.get(item.call_id)
            if call is None or call.engine_id != self.engine_id or call.status.is_done:
                raise UnknownCallError(item.call_id)
            resolved.append((call, item))
        by_time = self.config.service_unit is ServiceUnit.ENGINE_TIME
        prefill_cost = self.config.prefill_token_cost
        decode_cost = self.config.decode_token_cost
        quanta = self._quanta
        last = len(quanta) - 1
        for call, item in resolved:
            if by_time:
                gained = step_time
            else:
                gained = (
                    prefill_cost * item.num_prefill_tokens + decode_cost * item.num_decode_tokens
                )
            call.service += gained
            call.quantum_used += gained
            call.num_prompt_tokens_computed += item.num_prefill_tokens
            call.num_output_tokens += item.num_decode_tokens
            if call.level < last and call.quantum_used >= quanta[call.level]:
                self._demote_if_spent(call)

    # Views ---------------------------------------------------------------------

    @property
    def num_waiting(self) -> int:
        return len(self.queue) - len(self.running)

    @property
    def num_running(self) -> int:
        return len(self.running)

    def waiting(self) -> list[CallRecord]:
        """Calls waiting or preempted, in priority order."""
        return [c for c in self._priority_order() if c.call_id not in self.running]

    def has_call(self, call_id: str) -> bool:
        call = self.table.calls.get(call_id)
        return call is not None and call.engine_id == self.engine_id and not call.status.is_done

    # Phases --------------------------------------------------------------------

    def _priority_order(self) -> list[CallRecord]:
        if not self.policy.discretised:
            return sorted(self.queue, key=self.policy.sort_key)
        if self.config.queue_order is QueueOrder.FIFO:
            return list(self.queue)
        programs = self.table.programs
        order: list[CallRecord] = []
        for level in self.queue.levels:
            order.extend(
                call
                for _, _, call in sorted(
                    (_attained(programs.get(c.program_id), c), i, c)
                    for i, c in enumerate(level.values())
                )
            )
        return order

    def _fill(self, order: Iterable[CallRecord], budget: BatchBudget) -> list[CallRecord]:
        """Admit calls in priority order while they fit.

        After the first waiting call that does not fit (with ``stop_at_first_misfit``), no
        further waiting call is admitted, but lower-priority running calls that still fit keep
        running: only the ones the budget has no room for are preempted, not all of them.
        """
        running = self.running
        residents_left = len(running)
        scheduled: list[CallRecord] = []
        stopped = False
        for call in order:
            resident = call.call_id in running
            if resident:
                residents_left -= 1
            elif stopped:
                if residents_left == 0:
                    break
                continue
            if budget.try_add(call, resident=resident):
                scheduled.append(call)
            elif self.config.stop_at_first_misfit and not resident:
                stopped = True
                if residents_left == 0:
                    break
        return scheduled

    def _promote_starving(self, now: float) -> tuple[str, ...]:
        """Move waiting calls whose (W_program + W_call) / (T_program + T_call) >= beta to Q1.

        Deadlines are exact for this engine's own completions. When the table is shared with
        other engines, a few calls per decision are re-armed in turn, so the programs that other
        engines advanced are picked up within a bounded number of decisions.
        """
        if not self._starvation_enabled():
            return ()
        if not self._owns_table:
            self._rearm_after_foreign_completions()
        promoted: list[str] = []
        heap = self._deadline_heap
        while heap and heap[0][0] <= now:
            deadline, _, call_id = heapq.heappop(heap)
            if self._deadline.get(call_id) != deadline:
                continue
            del self._deadline[call_id]
            call = self.table.calls.get(call_id)
            if call is None or call.waiting_since is None or call.level == 0:
                continue
            if self._starve_deadline(call) > now:
                self._arm_deadline(call)
                continue
            self.queue.move(call, 0)
            call.starve_wait_base = call.current_wait(now)
            call.starve_service_base = call.service
            promoted.append(call_id)
        self.num_promotions += len(promoted)
        return tuple(promoted)

    def _starvation_enabled(self) -> bool:
        return (
            self.config.starvation_beta is not None
            and self.policy.discretised
            and self.config.num_queues > 1
        )

    def _starve_deadline(self, call: CallRecord) -> float:
        """The time at which a waiting ``call`` reaches the beta ratio (inf if never)."""
        beta = self.config.starvation_beta
        program = self.table.programs.get(call.program_id)
        if beta is None or program is None or call.waiting_since is None:
            return math.inf
        service = program.total_service + call.service - call.starve_service_base
        if service <= 0:
            return math.inf
        wait_so_far = program.total_wait + call.wait - call.starve_wait_base
        return call.waiting_since + beta * service - wait_so_far

    def _arm_deadline(self, call: CallRecord) -> None:
        if call.level == 0 or call.waiting_since is None or not self._starvation_enabled():
            self._deadline.pop(call.call_id, None)
            return
        deadline = self._starve_deadline(call)
        if deadline == math.inf:
            self._deadline.pop(call.call_id, None)
            return
        self._deadline[call.call_id] = deadline
        heapq.heappush(self._deadline_heap, (deadline, call.seq, call.call_id))

    def _rearm_after_foreign_completions(self) -> None:
        """Re-arm a few deadlines per decision once other engines have completed calls."""
        completions = self.table.num_completions
        if completions != self._completions_seen and not self._rescan:
            self._rescan = [c for level in self.queue.levels[1:] for c in level.values()]
        self._completions_seen = completions
        for _ in range(min(_RESCAN_PER_DECISION, len(self._rescan))):
            call = self._rescan.pop()
            if call.call_id in self._deadline:
                self._arm_deadline(call)

    def _rearm_program(self, program_id: str) -> None:
        program = self.table.programs.get(program_id)
        if program is None or not self._deadline:
            return
        for call in program.active_calls:
            if call.call_id in self._deadline:
                self._arm_deadline(call)

    def _demote_if_spent(self, call: CallRecord) -> None:
        last = self.config.num_queues - 1
        while call.level < last and call.quantum_used >= self.config.quantum(call.level):
            spill = call.quantum_used - self.config.quantum(call.level)
            self.queue.move(call, call.level + 1)
            call.quantum_used = spill

    def _own(self, call_id: str) -> CallRecord:
        call = self.table.calls.get(call_id)
        if call is None or call.engine_id != self.engine_id or call.status.is_done:
            raise UnknownCallError(call_id)
        return call

    def _detach(self, call: CallRecord) -> None:
        self.queue.remove(call)
        self.running.pop(call.call_id, None)
        self._deadline.pop(call.call_id, None)


_RESCAN_PER_DECISION = 32


def _attained(program: ProgramRecord | None, call: CallRecord) -> float:
    """The program's attained service including the call's own progress."""
    return (program.total_service if program is not None else 0.0) + call.service


def _single_queue(config: SchedulerConfig) -> SchedulerConfig:
    from dataclasses import replace

    return replace(config, num_queues=1, queue_boundaries=())
