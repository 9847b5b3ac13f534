"""What each preemption of an offline batch made room for (why PLAS's makespan was 4.3x longer).

    python benchmarks/bench_makespan_preemptions.py --programs 500 [--systems plas,mlfq]

Runs ShareGPT programs all arriving at t=0 on the bench's engine (``autellix bench`` settings),
with the anti-starvation rule on (beta 8, the default) and off, and classifies every preemption
by the calls the same scheduling pass started: one of a strictly higher queue, one of the same
queue only (a waiting call with an older ticket), or none (memory); and whether that pass started
a call the rule had promoted. Prints preemptions, promotions, swap time and makespan per run.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses

from autellix_backend.bench.records import RunSpec
from autellix_backend.bench.runner import BenchSettings, programs_for, sim_config
from autellix_backend.core import SchedulerConfig
from autellix_backend.core import scheduler as core_scheduler
from autellix_backend.core.budget import BatchBudget
from autellix_backend.core.outputs import SchedulerDecision
from autellix_backend.sim import run_simulation

COUNTS: collections.Counter[str] = collections.Counter()
_schedule = core_scheduler.Scheduler.schedule


def _counting_schedule(
    self: core_scheduler.Scheduler, budget: BatchBudget, now: float
) -> SchedulerDecision:
    decision = _schedule(self, budget, now)
    COUNTS["promotions"] += len(decision.promoted_ids)
    if decision.preempted:
        levels = [c.level for c in decision.started]
        promoted = any(c.starve_wait_base > 0 for c in decision.started)
        for call in decision.preempted:
            best = min(levels, default=None)
            kind = (
                "no call started"
                if best is None
                else "for a higher queue"
                if best < call.level
                else "for the same queue"
                if best == call.level
                else "for a lower queue"
            )
            COUNTS[kind] += 1
            COUNTS["in a pass that started a promoted call"] += promoted
    return decision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=500)
    parser.add_argument("--systems", default="plas")
    args = parser.parse_args()
    core_scheduler.Scheduler.schedule = _counting_schedule  # type: ignore[method-assign]
    for system in args.systems.split(","):
        for beta in (SchedulerConfig().starvation_beta, None):
            COUNTS.clear()
            settings = dataclasses.replace(
                BenchSettings(), scheduler=SchedulerConfig(starvation_beta=beta)
            )
            spec = RunSpec("makespan", "sharegpt", system, args.programs, arrivals="batch")
            result = run_simulation(programs_for(spec), sim_config(spec, settings))
            summary = result.summary()
            swap = sum(e.swap_time for e in result.engines)
            print(
                f"{system} beta={beta}: makespan {summary['makespan']:.1f} s, "
                f"preemptions {summary['num_preemptions']:.0f}, swap {swap:.1f} s, "
                f"prefix hit {summary['prefix_hit_rate']:.3f}, {dict(COUNTS)}"
            )


if __name__ == "__main__":
    main()
