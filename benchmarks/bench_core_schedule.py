"""Latency of one scheduling decision: 1,000 waiting calls from 10,000 live programs.

The programs live in the front end's process table; the engine queue holds only the 1,000
calls, each with the snapshot the table gave it. After every decision one program's state
changes (a call of it ended elsewhere) and its new snapshot is pushed to the queue
(``refresh``, outside the timed decision), as the gateway and the simulator do.

    python benchmarks/bench_core_schedule.py [--policy plas] [--repeats 2000]

Each decision builds a batch of up to 256 calls (vLLM's default max_num_seqs) from the
waiting calls, after the anti-starvation scan; then a random tenth of the batch progresses
so that demotions happen as they would in a real engine. Prints p50/p99 in milliseconds of
wall time and of the thread's CPU time (which other processes on a shared machine do not
inflate), once
with Python's default garbage collector and once with the long-lived table frozen out of it
(``gc.freeze()``, as vLLM does after engine start-up): full collections over 10,000 program
rows, not the scheduler, are what the default-GC tail measures. ``waiting cpu`` is the CPU
time of ``waiting()``, the ranked waiting calls that the vLLM plugin and the simulator read.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import time

from autellix_backend.core import (
    CallArrival,
    CallProgress,
    Policy,
    ProgramTracker,
    Scheduler,
    SchedulerConfig,
    ServiceUnit,
    SlotBudget,
)
from autellix_protocol import ProgramSnapshot


def measure(
    policy: Policy, *, programs: int, waiting: int, repeats: int, seed: int, freeze: bool
) -> tuple[list[float], list[float], list[float]]:
    """Wall and CPU milliseconds of each decision (CPU time excludes other processes' turns),
    and CPU milliseconds of reading the waiting calls in order."""
    rng = random.Random(seed)
    config = SchedulerConfig(policy=policy, service_unit=ServiceUnit.TOKENS)
    front = ProgramTracker(policy)
    sched = Scheduler(config)
    for i in range(programs):
        program = front.table.start_program(f"p{i}", now=0.0)
        program.service = program.total_service = rng.expovariate(1 / 2.0)
    for j in range(waiting):
        arrival = CallArrival(
            call_id=f"c{j}",
            program_id=f"p{rng.randrange(programs)}",
            prompt_tokens=rng.randint(16, 2048),
            oracle_remaining=rng.random() * 10,
        )
        now = rng.random()
        record = front.admit(arrival, now)
        sched.add_call(front.engine_arrival(record, arrival), now=now)
    live_programs = sched.program_ids()
    if freeze:
        gc.collect()
        gc.freeze()
    samples: list[float] = []
    cpu_samples: list[float] = []
    waiting_samples: list[float] = []
    now = 1.0
    for _ in range(repeats):
        start = time.perf_counter()
        cpu_start = time.thread_time()
        decision = sched.schedule(SlotBudget(256), now=now)
        cpu_samples.append((time.thread_time() - cpu_start) * 1000)
        samples.append((time.perf_counter() - start) * 1000)
        progressed = rng.sample(decision.scheduled, k=max(1, len(decision.scheduled) // 10))
        sched.update_from_step(
            [CallProgress(c.call_id, num_decode_tokens=1) for c in progressed], 0.02, now + 0.02
        )
        program_id = rng.choice(live_programs)
        old = front.table.program(program_id)
        old.service += 0.1
        old.total_service += 0.1
        sched.refresh(program_id, ProgramSnapshot(old.service, 0.0, old.total_service, 1.0))
        cpu_start = time.thread_time()
        sched.waiting()
        waiting_samples.append((time.thread_time() - cpu_start) * 1000)
        now += 0.02
    if freeze:
        gc.unfreeze()
    return samples, cpu_samples, waiting_samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="all")
    parser.add_argument("--programs", type=int, default=10_000)
    parser.add_argument("--waiting", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    policies = list(Policy) if args.policy == "all" else [Policy.parse(args.policy)]
    print(
        f"{'policy':<12} {'gc':<8} {'wall p50':>9} {'wall p99':>9} {'cpu p50':>8} {'cpu p99':>8}"
        f" {'waiting cpu p50':>16}"
    )
    for policy in policies:
        for freeze in (False, True):
            wall, cpu, view = measure(
                policy,
                programs=args.programs,
                waiting=args.waiting,
                repeats=args.repeats,
                seed=args.seed,
                freeze=freeze,
            )
            w = statistics.quantiles(wall, n=100)
            c = statistics.quantiles(cpu, n=100)
            mode = "freeze" if freeze else "default"
            print(
                f"{policy.value:<12} {mode:<8} {w[49]:9.3f} {w[98]:9.3f} {c[49]:8.3f} {c[98]:8.3f}"
                f" {statistics.median(view):16.3f}"
            )


if __name__ == "__main__":
    main()
