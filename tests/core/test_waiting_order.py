"""The scheduler keeps its waiting calls sorted as they change; the order must equal a full sort.

The reference below is the per-step algorithm the scheduler used before it kept the order
incrementally: sort every live call by the policy's order, then admit in that order. Random
arrivals, steps, progress, refreshes, promotions, finishes and aborts must never make the kept
order (``waiting()``) or the batch a step picks differ from it.
"""

from __future__ import annotations

import random

import pytest

from autellix_backend.core import (
    CallArrival,
    CallProgress,
    Policy,
    Scheduler,
    SchedulerConfig,
    SlotBudget,
)
from autellix_backend.core.config import QueueOrder
from autellix_backend.core.process_table import CallRecord
from autellix_protocol import ProgramSnapshot


def _reference_order(sched: Scheduler) -> list[CallRecord]:
    """Every live call in priority order, sorted from scratch."""
    if not sched.policy.discretised:
        return sorted(sched.queue, key=sched.policy.sort_key)
    if sched.config.queue_order is QueueOrder.FIFO:
        return list(sched.queue)
    order: list[CallRecord] = []
    for level in sched.queue.levels:
        ranked = sorted(
            (c.snapshot.total_service + c.service, i, c) for i, c in enumerate(level.values())
        )
        order.extend(c for _, _, c in ranked)
    return order


def _reference_batch(sched: Scheduler, budget: SlotBudget) -> list[str]:
    """The calls a step admits: residents always tried, waiting ones until the first misfit.

    Without preemption the running calls go first, then (FCFS and the discretised policies)
    the waiting ones in queue entry order.
    """
    order = _reference_order(sched)
    running = sched.running
    if not (sched.config.preemption and sched.policy.preemptive):
        if sched.policy.discretised or sched.policy.arrival_ordered:
            waiting = [c for c in sched.queue if c.call_id not in running]
            order = [*running.values(), *waiting]
        else:
            order = [c for c in order if c.call_id in running] + [
                c for c in order if c.call_id not in running
            ]
    picked: list[str] = []
    stopped = False
    for call in order:
        resident = call.call_id in running
        if stopped and not resident:
            continue
        if budget.try_add(call, resident=resident):
            picked.append(call.call_id)
        elif sched.config.stop_at_first_misfit and not resident:
            stopped = True
    return picked


def _snapshot(rng: random.Random) -> ProgramSnapshot:
    return ProgramSnapshot(rng.random() * 10, rng.random(), rng.random() * 10, rng.random())


@pytest.mark.parametrize("policy", list(Policy))
@pytest.mark.parametrize("queue_order", list(QueueOrder))
def test_kept_order_equals_a_full_sort_after_every_change(
    policy: Policy, queue_order: QueueOrder
) -> None:
    for seed in range(6):
        rng = random.Random(seed)
        config = SchedulerConfig(
            policy=policy,
            queue_order=queue_order,
            service_unit="tokens",  # type: ignore[arg-type]
            num_queues=rng.choice([1, 3, 8]),
            base_quantum=rng.choice([0.5, 2.0]),
            starvation_beta=rng.choice([None, 2.0]),
            requeue_preempted=rng.random() < 0.5,
            preemption=rng.random() < 0.7,
            stop_at_first_misfit=rng.random() < 0.7,
        )
        sched = Scheduler(config)
        now = 0.0
        for n in range(150):
            now += rng.random() * 0.1
            op = rng.random()
            if op < 0.35:
                arrival = CallArrival(
                    call_id=f"c{n}",
                    program_id=f"p{rng.randrange(5)}",
                    prompt_tokens=rng.randint(1, 50),
                    oracle_remaining=rng.random() * 10,
                    snapshot=_snapshot(rng),
                )
                sched.add_call(arrival, now)
            elif op < 0.65:
                slots = rng.randint(1, 6)
                sched._promote_starving(now)  # the step's first phase, so the reference sees it
                expected = _reference_batch(sched, SlotBudget(slots))
                decision = sched.schedule(SlotBudget(slots), now)
                assert [c.call_id for c in decision.scheduled] == expected
                progress = [
                    CallProgress(c.call_id, num_decode_tokens=rng.randint(0, 3))
                    for c in decision.scheduled
                ]
                sched.update_from_step(progress, 0.01, now)
            elif op < 0.8 and sched.calls:
                sched.refresh(rng.choice(sched.program_ids()), _snapshot(rng))
            elif op < 0.9 and sched.running:
                sched.finish_call(rng.choice(sorted(sched.running)), now)
            elif sched.calls:
                sched.abort_call(rng.choice(sorted(sched.calls)), now)
            expected_waiting = [
                c for c in _reference_order(sched) if c.call_id not in sched.running
            ]
            assert sched.waiting() == expected_waiting
            assert sched.first_waiting() == (expected_waiting[0] if expected_waiting else None)
