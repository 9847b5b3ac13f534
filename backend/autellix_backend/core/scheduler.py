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
import math
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

from autellix_backend.core.config import QueueOrder, SchedulerConfig, ServiceUnit
from autellix_backend.core.errors import DuplicateError, InvalidCallError, UnknownCallError
from autellix_backend.core.outputs import CallProgress, SchedulerDecision
from autellix_backend.core.policies import PriorityPolicy, make_policy
from autellix_backend.core.process_table import CallArrival, CallRecord
from autellix_backend.core.queues import Key, MultiLevelQueue, SortedCalls
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
        key = self._key_function()
        self._waiting = SortedCalls(key)
        """Waiting and preempted calls in priority order, kept as they change."""
        self._running_order = (
            SortedCalls(key) if discretised and self.config.queue_order is QueueOrder.FIFO else None
        )
        """Running calls in priority order, kept when their keys move only with their queue
        (FIFO queues); otherwise their keys follow their service and each step sorts them."""
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
        self._waiting.add(call)
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
        waiting = self._waiting
        for call in calls.values():
            call.snapshot = replace(snapshot, critical_path=call.snapshot.critical_path)
            if discretised and call.first_scheduled_time is None and call.waiting_since is not None:
                level = self.queue.level_for(self.policy.priority(call.snapshot, _NO_ARRIVAL))
                if level > call.level and call.starve_wait_base == 0.0:
                    self.queue.move(call, level)
            if call.call_id in waiting:
                waiting.update(call)
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
        waiting: Iterable[tuple[Key, CallRecord]] = self._waiting.entries
        running: list[tuple[Key, CallRecord]]
        if not preempt and (self.policy.discretised or self.policy.arrival_ordered):
            running = [((), c) for c in self.running.values()]
            if not self.policy.discretised or self.config.queue_order is not QueueOrder.FIFO:
                # Without preemption waiting calls start in queue entry order (FCFS inside
                # each queue), whatever the in-queue order that ``waiting()`` reports.
                waiting = (((), c) for c in self.queue if c.call_id not in self.running)
        elif self._running_order is not None:
            running = self._running_order.entries
        else:
            key = self._waiting.key
            running = sorted(((key(c), c) for c in self.running.values()), key=_first)
        scheduled = self._fill(running, waiting, budget, residents_first=not preempt)
        chosen = {c.call_id for c in scheduled}
        preempted: list[CallRecord] = []
        for call in list(self.running.values()):
            if call.call_id not in chosen:
                call.preempt(now)
                del self.running[call.call_id]
                preempted.append(call)
                if self._running_order is not None:
                    self._running_order.discard(call)
                if self.config.requeue_preempted:
                    self.queue.requeue(call)
                self._waiting.add(call)
                self._arm_deadline(call)
        started: list[CallRecord] = []
        for call in scheduled:
            if call.call_id not in self.running:
                call.start(now)
                self.running[call.call_id] = call
                self._waiting.discard(call)
                if self._running_order is not None:
                    self._running_order.add(call)
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
            if call.call_id not in self.running:  # progress of a call the engine holds back
                self._waiting.update(call)

    # Views ---------------------------------------------------------------------

    @property
    def num_waiting(self) -> int:
        return len(self.queue) - len(self.running)

    @property
    def num_running(self) -> int:
        return len(self.running)

    def waiting(self) -> list[CallRecord]:
        """Calls waiting or preempted, in priority order (kept sorted, not sorted per call)."""
        return self._waiting.calls()

    def first_waiting(self) -> CallRecord | None:
        """The waiting call that ranks first, or None."""
        entries = self._waiting.entries
        return entries[0][1] if entries else None

    def has_call(self, call_id: str) -> bool:
        return call_id in self.calls

    def program_ids(self) -> list[str]:
        """Programs with live calls here."""
        return list(self._program_calls)

    # Phases --------------------------------------------------------------------

    def _key_function(self) -> Callable[[CallRecord], Key]:
        """The priority order as a sort key, unique per call (the policy's order, then arrival).

        Discretised policies rank by queue, then by entry into the queue (FIFO) or by least
        program attained service; the others by the policy's ``sort_key``.
        """
        tickets = self.queue.tickets
        sort_key = self.policy.sort_key
        if not self.policy.discretised:
            return lambda c: (sort_key(c), c.seq)
        if self.config.queue_order is QueueOrder.FIFO:
            return lambda c: (c.level, tickets[c.call_id])
        return lambda c: (c.level, c.snapshot.total_service + c.service, tickets[c.call_id])

    def _fill(
        self,
        running: list[tuple[Key, CallRecord]],
        waiting: Iterable[tuple[Key, CallRecord]],
        budget: BatchBudget,
        *,
        residents_first: bool,
    ) -> list[CallRecord]:
        """Admit calls in priority order while they fit.

        ``running`` and ``waiting`` are each in priority order; they are merged by key, or
        the running calls go first (``residents_first``, no preemption). After the first
        waiting call that does not fit (with ``stop_at_first_misfit``), no further waiting
        call is admitted and the waiting calls are not read further, but lower-priority
        running calls that still fit keep running: only the ones the budget has no room for
        are preempted, not all of them.
        """
        stop = self.config.stop_at_first_misfit
        scheduled: list[CallRecord] = []
        r = len(running) if residents_first else 0
        if residents_first:
            scheduled.extend(c for _, c in running if budget.try_add(c, resident=True))
        num_running = len(running)
        for key, call in waiting:
            while r < num_running and running[r][0] < key:
                resident = running[r][1]
                r += 1
                if budget.try_add(resident, resident=True):
                    scheduled.append(resident)
            if budget.try_add(call, resident=False):
                scheduled.append(call)
            elif stop:
                break
        scheduled.extend(c for _, c in running[r:] if budget.try_add(c, resident=True))
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
            self._waiting.update(call)
            call.starve_wait_base = call.current_wait(now)
            call.starve_service_base = call.service
            promoted.append(call_id)
            call.record_promotion(now)
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
        if self._running_order is not None and call.call_id in self._running_order:
            self._running_order.update(call)

    def _own(self, call_id: str) -> CallRecord:
        call = self.calls.get(call_id)
        if call is None:
            raise UnknownCallError(call_id)
        return call

    def _detach(self, call: CallRecord) -> None:
        self.queue.remove(call)
        self._waiting.discard(call)
        if self._running_order is not None:
            self._running_order.discard(call)
        self.running.pop(call.call_id, None)
        self._deadline.pop(call.call_id, None)


_NO_ARRIVAL = CallArrival(call_id="-", program_id="-")
"""Stands in for the arrival when a refreshed snapshot is re-ranked (policies that rank by
arrival fields, SRPT, are not discretised and never re-rank)."""


def _first(entry: tuple[Key, CallRecord]) -> Key:
    return entry[0]


def _single_queue(config: SchedulerConfig) -> SchedulerConfig:
    from dataclasses import replace

    return replace(config, num_queues=1, queue_boundaries=())
