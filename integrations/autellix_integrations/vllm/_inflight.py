"""Steps vLLM has scheduled and not yet reported back, and the engine time each one took.

With synchronous scheduling ``update_from_output(step N)`` always comes before
``schedule(step N+1)``, so one step is in flight at a time. With async scheduling the engine
schedules step N+1 while step N runs, and only then hands step N's output back. Whatever the
plugin needs at update time (each request's position before the step, when the step was
launched) is therefore recorded per step at schedule time instead of read from the requests
or the scheduler's fields afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

    from vllm.v1.core.sched.output import SchedulerOutput
    from vllm.v1.request import Request


@dataclass(frozen=True, slots=True)
class StepPlan:
    """What one scheduled step was, as recorded when ``schedule()`` returned it."""

    launched: float
    """Monotonic time at the end of ``schedule()``: the step can start on the device."""
    schedule_s: float = 0.0
    """Time spent in ``schedule()`` for this step."""
    loop_s: float = 0.0
    """Engine-loop time before this ``schedule()`` while requests were pending."""
    starts: dict[str, int] = field(default_factory=dict)
    """Request id -> tokens it had computed before this step (the chunk's first position)."""


@dataclass(frozen=True, slots=True)
class LandedStep:
    """A step whose output came back: its plan and the engine seconds it is credited."""

    plan: StepPlan
    model_s: float
    """From when the device could start the step (its launch, or the previous step's
    result, whichever is later) to its result: in sync mode the forward pass; with steps
    overlapping, consecutive steps' times add up to the busy time without double counting."""

    def start_of(self, request: Request, num_tokens: int) -> int:
        """First position of ``request``'s chunk in this step."""
        start = self.plan.starts.get(request.request_id)
        return start if start is not None else request.num_computed_tokens - num_tokens


class InFlightSteps:
    """Plans of the steps scheduled and not yet updated, keyed by their ``SchedulerOutput``."""

    def __init__(self) -> None:
        self._plans: dict[int, StepPlan] = {}
        self._last_result = float("-inf")

    def __len__(self) -> int:
        return len(self._plans)

    def launch(
        self,
        output: SchedulerOutput,
        requests: Mapping[str, Request] | None,
        *,
        launched: float,
        schedule_s: float = 0.0,
        loop_s: float = 0.0,
    ) -> None:
        """Record a step ``schedule()`` just returned (positions are already advanced).

        With ``requests`` None the positions are not recorded: the step is updated before any
        other is scheduled, so ``LandedStep.start_of`` reads them back from the requests."""
        starts = (
            {
                req_id: request.num_computed_tokens - num_tokens
                for req_id, num_tokens in output.num_scheduled_tokens.items()
                if (request := requests.get(req_id)) is not None
            }
            if requests is not None
            else {}
        )
        self._plans[id(output)] = StepPlan(launched, schedule_s, loop_s, starts)

    def land(self, output: SchedulerOutput, now: float) -> LandedStep:
        """Take the step whose output arrived at ``now``; an unknown step counts from ``now``."""
        plan = self._plans.pop(id(output), None) or StepPlan(launched=now)
        began = max(plan.launched, self._last_result)
        self._last_result = now
        return LandedStep(plan, max(0.0, now - began))
