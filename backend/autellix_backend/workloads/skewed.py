"""Skewed: multi-threaded programs whose branches have very different critical paths.

Made to tell the paper's ATLAS (one program-wide critical-path scalar) from ATLAS-exact (the
path over each call's real parents). Half the programs are map-reduce jobs: a planning call fans
out to ``MAP_BRANCHES`` branches, one of which is a long chain of calls while the others are one
short call each, and a reduce call joins them. The other half are tree searches whose best branch
is the deepest: each level expands ``TREE_WIDTH`` children of the current best node in parallel,
the losers get one short evaluation call and stop, the best goes one level deeper; a final answer
joins every leaf. Under ATLAS, a short branch's calls inherit the long branch's service and wait
behind other programs; under ATLAS-exact they keep their own short path.
"""

from __future__ import annotations

import numpy as np

from autellix_backend.workloads.sampling import ClippedLogNormal
from autellix_backend.workloads.spec import CallSpec, ProgramSpec, PromptSegment

NAME = "skewed"

INSTRUCTION_TOKENS = 120
"""Shared instruction every call sends."""
TASK = ClippedLogNormal(mean=60.0, sigma=0.4, low=8, high=256)
"""Tokens of the program's task."""
SHORT = ClippedLogNormal(mean=40.0, sigma=0.5, low=4, high=256)
"""Generated tokens of a short call (a map on a short branch, an evaluation, a plan)."""
LONG = ClippedLogNormal(mean=160.0, sigma=0.5, low=16, high=1024)
"""Generated tokens of each call of the long branch (and each expansion of the tree)."""
MAP_BRANCHES = 4
"""Branches of a map-reduce program (one long, the rest short)."""
LONG_CHAIN = (4, 10)
"""Calls in the long branch: uniform in this range (inclusive)."""
TREE_WIDTH = 3
"""Children expanded per tree level."""
TREE_DEPTH = (3, 7)
"""Levels of a tree search: uniform in this range (inclusive)."""


def generate(num_programs: int, *, seed: int = 0) -> list[ProgramSpec]:
    """``num_programs`` programs, map-reduce and tree search alternating.

    Args:
        num_programs: How many programs.
        seed: Equal seeds give equal workloads.
    """
    rng = np.random.default_rng([seed, 0x5CE3])
    return [
        (_map_reduce if i % 2 == 0 else _tree_search)(f"{NAME}-{i}", rng)
        for i in range(num_programs)
    ]


def _call(
    call_id: str, thread: str, parents: tuple[str, ...], prompt: tuple[PromptSegment, ...], n: int
) -> CallSpec:
    return CallSpec(
        call_id=call_id, thread_id=thread, parent_ids=parents, prompt=prompt, output_tokens=n
    )


def _map_reduce(program_id: str, rng: np.random.Generator) -> ProgramSpec:
    base = (
        PromptSegment("skewed:instruction", INSTRUCTION_TOKENS),
        PromptSegment(f"{program_id}:task", TASK.draw(rng)),
    )
    plan = _call(f"{program_id}:plan", f"{program_id}:main", (), base, SHORT.draw(rng))
    context: tuple[PromptSegment, ...] = (
        *base,
        PromptSegment(plan.output_key, plan.output_tokens),
    )
    calls = [plan]
    ends: list[str] = []
    for b in range(MAP_BRANCHES):
        thread, parent, history = f"{program_id}:b{b}", plan.call_id, context
        length = int(rng.integers(LONG_CHAIN[0], LONG_CHAIN[1] + 1)) if b == 0 else 1
        for k in range(length):
            size = LONG.draw(rng) if b == 0 else SHORT.draw(rng)
            call = _call(f"{program_id}:b{b}:{k}", thread, (parent,), history, size)
            calls.append(call)
            history = (*history, PromptSegment(call.output_key, call.output_tokens))
            parent = call.call_id
        ends.append(parent)
    calls.append(_call(f"{program_id}:reduce", f"{program_id}:main", tuple(ends), context, 80))
    return ProgramSpec(program_id=program_id, arrival_time=0.0, calls=tuple(calls), workload=NAME)


def _tree_search(program_id: str, rng: np.random.Generator) -> ProgramSpec:
    base = (
        PromptSegment("skewed:instruction", INSTRUCTION_TOKENS),
        PromptSegment(f"{program_id}:task", TASK.draw(rng)),
    )
    calls: list[CallSpec] = []
    leaves: list[str] = []
    parents: tuple[str, ...] = ()
    trajectory: tuple[PromptSegment, ...] = base
    for level in range(int(rng.integers(TREE_DEPTH[0], TREE_DEPTH[1] + 1))):
        children = [
            _call(
                f"{program_id}:l{level}:c{j}",
                f"{program_id}:t{j}",
                parents,
                trajectory,
                LONG.draw(rng),
            )
            for j in range(TREE_WIDTH)
        ]
        calls.extend(children)
        for j, child in enumerate(children[1:], start=1):
            value = _call(
                f"{program_id}:l{level}:v{j}",
                f"{program_id}:t{j}",
                (child.call_id,),
                (*trajectory, PromptSegment(child.output_key, child.output_tokens)),
                SHORT.draw(rng),
            )
            calls.append(value)
            leaves.append(value.call_id)
        best = children[0]
        trajectory = (*trajectory, PromptSegment(best.output_key, best.output_tokens))
        parents = (best.call_id,)
    calls.append(
        _call(f"{program_id}:answer", f"{program_id}:t0", (*parents, *leaves), trajectory, 60)
    )
    return ProgramSpec(program_id=program_id, arrival_time=0.0, calls=tuple(calls), workload=NAME)
