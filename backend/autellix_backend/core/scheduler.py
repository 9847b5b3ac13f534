"""The scheduling core: one engine's queue of calls, ordered by a program-aware policy.

An engine drives it with four calls, in the shape of vLLM's scheduler:

1. ``add_call(arrival, now)`` when a request arrives,
2. ``schedule(budget, now)`` before each step: what runs, what is preempted,
3. ``update_from_step(progress, step_time, now)`` after the step: attained service, demotion,
4. ``finish_call(call_id, now)`` (or ``abort_call``) when a call ends.

It keeps queues, not programs: a call arrives with a frozen ``ProgramSnapshot`` taken from the
front end's process table, its priority is computed once by the policy from that snapshot, and
``refresh`` replaces the snapshot of a program's calls while they wait. The finished call it
returns (service, wait, preemptions) is what the engine reports back to the table. The vLLM
plugin, the simulated engine and the backend all use this class; it does no I/O.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from autellix_backend.core.config import QueueOrder, SchedulerConfig, ServiceUnit
from autellix_backend.core.errors import DuplicateError, InvalidCallError, UnknownCallError
from autellix_backend.core.outputs import CallProgress, SchedulerDecision
from autellix_backend.core.policies import PriorityPolicy, make_policy
from autellix_backend.core.process_table import CallArrival, CallRecord
from autellix_backend.core.queues import MultiLevelQueue
from autellix_protocol.snapshot import ZERO_SNAPSHOT, ProgramSnapshot

if TYPE_CHECKING:
    from autellix_backend.core.budget import BatchBudget


class Scheduler:
    """Program-aware queue of the calls of one engine (the engine's live calls only).

    Args:
        config: policy and queue settings.
        engine_id: recorded on the calls this scheduler serves.
        policy: the policy instance to use (default: ``config.policy``).
    """

    def __init__(
        self,
        config: SchedulerConfig | None = None,
        *,
        engine_id: str = "engine-0",
        policy: PriorityPolicy | None = None,
    ) -> None:
        self.config = config or SchedulerConfig()
        self.policy = policy or make_policy(self.config.policy)
        self.engine_id = engine_id
        discretised = self.policy.discretised
        self.queue = MultiLevelQueue(self.config if discretised else _single_queue(self.config))
        self.calls: dict[str, CallRecord] = {}
        """Live calls (waiting, preempted or running) by id."""
        self.running: dict[str, CallRecord] = {}
        self._program_calls: dict[str, dict[str, CallRecord]] = {}
        self.num_preemptions = 0
        self.num_promotions = 0
        # Anti-starvation: the time at which each waiting call below Q1 would reach beta,
        # in a lazy heap. Entries are valid while they match ``_deadline``.
        self._deadline: dict[str, float] = {}
        self._deadline_heap: list[tuple[float, int, str]] = []
        self._seq = 0
        self._quanta = (
            [self.config.quantum(i) for i in range(self.config.num_queues)]
            if discretised
            else [math.inf]
        )

    # Arrivals and completions --------------------------------------------------

    def add_call(self, arrival: CallArrival, now: float) -> CallRecord:
        """Queue a new call; it waits until ``schedule`` picks it.

        Its priority is computed once, by the policy, from ``arrival.snapshot``.

        Raises:
            InvalidCallError: malformed arrival. DuplicateError: the call id is live here.
        """
        arrival.validate()
        if arrival.call_id in self.calls:
            raise DuplicateError(f"call {arrival.call_id!r} already exists")
        snapshot = arrival.snapshot or ZERO_SNAPSHOT
        priority = self.policy.priority(snapshot, arrival)
        self._seq += 1
        call = CallRecord.arriving(
            arrival,
            now,
            priority=priority,
            seq=self._seq,
            snapshot=snapshot,
            engine_id=self.engine_id,
        )
        self.calls[call.call_id] = call
        self._program_calls.setdefault(call.program_id, {})[call.call_id] = call
        level = self.queue.level_for(priority) if self.policy.discretised else 0
        self.queue.push(call, level)
        self._arm_deadline(call)
        return call

    def refresh(self, program_id: str, snapshot: ProgramSnapshot) -> int:
        """Give a program's live calls here its new state; returns how many calls it touched.

        Waiting calls that never ran move down to the queue of the program's new service
        (PLAS: service the program attained elsewhere counts against them too); every call's
        in-queue order and anti-starvation deadline follow the new totals. A call keeps its
        own critical path (exact-DAG ATLAS), which only its parents set.
        """
        calls = self._program_calls.get(program_id)
        if not calls:
            return 0
        discretised = self.policy.discretised
        for call in calls.values():
            call.snapshot = replace(snapshot, critical_path=call.snapshot.critical_path)
            if discretised and call.first_scheduled_time is None and call.waiting_since is not None:
                level = self.queue.level_for(self.policy.priority(call.snapshot, _NO_ARRIVAL))
                if level > call.level and call.starve_wait_base == 0.0:
                    self.queue.move(call, level)
            if call.waiting_since is not None:
                self._arm_deadline(call)
        return len(calls)

    def finish_call(self, call_id: str, now: float) -> CallRecord:
        """Close a completed call; the returned record is what the engine reports back."""
        return self._close(call_id, now, aborted=False)

    def abort_call(self, call_id: str, now: float) -> CallRecord:
        """Drop a call (client gone, engine failed); its service is in the returned record."""
        return self._close(call_id, now, aborted=True)

    def _close(self, call_id: str, now: float, *, aborted: bool) -> CallRecord:
        call = self._own(call_id)
        self._detach(call)
        call.close(now, aborted=aborted)
        del self.calls[call_id]
        calls = self._program_calls[call.program_id]
        del calls[call_id]
        if not calls:
            del self._program_calls[call.program_id]
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
                call.preempt(now)
                del self.running[call.call_id]
                preempted.append(call)
                if self.config.requeue_preempted:
                    self.queue.requeue(call)
                self._arm_deadline(call)
        started: list[CallRecord] = []
        for call in scheduled:
            if call.call_id not in self.running:
                call.start(now)
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
        calls = self.calls
        resolved: list[tuple[CallRecord, CallProgress]] = []
        for item in progress:
            if item.num_prefill_tokens < 0 or item.num_decode_tokens < 0:
                raise InvalidCallError("token counts in a step must be >= 0")
            call = calls.get(item.call_id)
            if call is None:
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
        return call_id in self.calls

    def program_ids(self) -> list[str]:
        """Programs with live calls here."""
        return list(self._program_calls)

    # Phases --------------------------------------------------------------------

    def _priority_order(self) -> list[CallRecord]:
        if not self.policy.discretised:
            return sorted(self.queue, key=self.policy.sort_key)
        if self.config.queue_order is QueueOrder.FIFO:
            return list(self.queue)
        order: list[CallRecord] = []
        for level in self.queue.levels:
            order.extend(
                call
                for _, _, call in sorted(
                    (c.snapshot.total_service + c.service, i, c)
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

        W_program and T_program come from each call's snapshot, so waits and service the
        program had on any engine count; ``refresh`` re-arms the deadlines when they change.
        """
        if not self._starvation_enabled():
            return ()
        promoted: list[str] = []
        heap = self._deadline_heap
        while heap and heap[0][0] <= now:
            deadline, _, call_id = heapq.heappop(heap)
            if self._deadline.get(call_id) != deadline:
                continue
            del self._deadline[call_id]
            call = self.calls.get(call_id)
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
        if beta is None or call.waiting_since is None:
            return math.inf
        snapshot = call.snapshot
        service = snapshot.total_service + call.service - call.starve_service_base
        if service <= 0:
            return math.inf
        wait_so_far = snapshot.total_wait + call.wait - call.starve_wait_base
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

    def _demote_if_spent(self, call: CallRecord) -> None:
        last = self.config.num_queues - 1
        while call.level < last and call.quantum_used >= self.config.quantum(call.level):
            spill = call.quantum_used - self.config.quantum(call.level)
            self.queue.move(call, call.level + 1)
            call.quantum_used = spill

    def _own(self, call_id: str) -> CallRecord:
        call = self.calls.get(call_id)
        if call is None:
            raise UnknownCallError(call_id)
        return call

    def _detach(self, call: CallRecord) -> None:
        self.queue.remove(call)
        self.running.pop(call.call_id, None)
        self._deadline.pop(call.call_id, None)


_NO_ARRIVAL = CallArrival(call_id="-", program_id="-")
"""Stands in for the arrival when a refreshed snapshot is re-ranked (policies that rank by
arrival fields, SRPT, are not discretised and never re-rank)."""


def _single_queue(config: SchedulerConfig) -> SchedulerConfig:
    from dataclasses import replace

    return replace(config, num_queues=1, queue_boundaries=())
