"""Helpers to build small workloads for the simulator tests."""

from __future__ import annotations

from collections.abc import Sequence

from autellix_backend.sim import CallResult
from autellix_backend.workloads import CallSpec, ProgramSpec, PromptSegment


def chain_program(
    program_id: str,
    lengths: Sequence[int],
    *,
    arrival: float = 0.0,
    prompt_tokens: int = 1,
    shared_prefix: int = 0,
    delay: float = 0.0,
) -> ProgramSpec:
    """A single-threaded program: one call per entry of ``lengths`` (output tokens), each
    seeing the program's history (prefix, previous prompts and outputs)."""
    calls: list[CallSpec] = []
    history: list[PromptSegment] = []
    if shared_prefix:
        history.append(PromptSegment("system", shared_prefix))
    for i, length in enumerate(lengths):
        call_id = f"{program_id}/{i}"
        prompt = (*history, PromptSegment(f"{call_id}:in", prompt_tokens))
        parents = (f"{program_id}/{i - 1}",) if i else ()
        calls.append(CallSpec(call_id, "main", parents, prompt, length, delay if i else 0.0))
        history = [*prompt, PromptSegment(f"{call_id}:out", length)]
    return ProgramSpec(program_id, arrival, tuple(calls), workload="test")


def went_to_a_least_used_engine(call: CallResult, calls: Sequence[CallResult]) -> bool:
    """Whether ``call``'s engine had the fewest calls in flight when it arrived.

    Calls arriving at the same instant may have been routed just before it, so the chosen
    engine may be ahead of the least-used one by at most their number.
    """
    engines = {c.engine_id for c in calls}
    t = call.arrival_time
    load = dict.fromkeys(engines, 0)
    simultaneous = 0
    for other in calls:
        if other is call:
            continue
        if other.arrival_time < t < other.finish_time:
            load[other.engine_id] += 1
        elif other.arrival_time == t:
            simultaneous += 1
    return load[call.engine_id] <= min(load.values()) + simultaneous
