"""Small deterministic workloads for the real engine: the calibration fidelity check and the
real-engine benchmark of issue 4 (burst, Poisson mix, map-reduce plus chat)."""

from __future__ import annotations

import random
from collections.abc import Callable

from autellix_backend.workloads.spec import CallSpec, ProgramSpec, PromptSegment


def chain(
    program_id: str, *, num_calls: int, prompt: int, output: int, arrival: float, workload: str
) -> ProgramSpec:
    """A single-threaded program of ``num_calls`` calls, each ``prompt`` in / ``output`` out."""
    calls: list[CallSpec] = []
    for i in range(num_calls):
        call_id = f"{program_id}-c{i}"
        parents = (calls[-1].call_id,) if calls else ()
        segment = PromptSegment(f"{call_id}:in", prompt)
        calls.append(CallSpec(call_id, "main", parents, (segment,), output))
    return ProgramSpec(program_id, arrival, tuple(calls), workload=workload)


def map_reduce(program_id: str, *, fan_out: int, arrival: float) -> ProgramSpec:
    """Plan (1 call) -> ``fan_out`` parallel map calls (one thread each) -> reduce (1 call)."""
    plan = CallSpec(
        f"{program_id}-plan", "main", (), (PromptSegment(f"{program_id}:doc", 128),), 32
    )
    maps = tuple(
        CallSpec(
            f"{program_id}-map{i}",
            f"map{i}",
            (plan.call_id,),
            (PromptSegment(f"{program_id}:chunk{i}", 128),),
            64,
        )
        for i in range(fan_out)
    )
    reduce = CallSpec(
        f"{program_id}-reduce",
        "main",
        tuple(m.call_id for m in maps),
        (PromptSegment(f"{program_id}:summaries", 256),),
        64,
    )
    return ProgramSpec(program_id, arrival, (plan, *maps, reduce), workload="mapreduce")


def burst(
    *, num_long: int = 4, num_short: int = 12, long_calls: int = 4, long_prompt: int = 256,
    long_output: int = 128, short_output: int = 8,
) -> list[ProgramSpec]:  # fmt: skip
    """Issue 4's burst: long programs and short ones, all at t=0 (long ones first in line)."""
    longs = [
        chain(f"long{i}", num_calls=long_calls, prompt=long_prompt, output=long_output,
              arrival=0.0, workload="long")
        for i in range(num_long)
    ]  # fmt: skip
    shorts = [
        chain(f"short{i}", num_calls=2, prompt=32, output=short_output, arrival=0.0,
              workload="short")
        for i in range(num_short)
    ]  # fmt: skip
    return longs + shorts


def poisson_mix(
    *,
    rate: float = 1.5,
    num_programs: int = 16,
    long_every: int = 4,
    seed: int = 0,
    prefix: str = "",
) -> list[ProgramSpec]:
    """The burst's program types (1 long in ``long_every``) arriving as a Poisson process.

    ``prefix`` starts every program id (and so every prompt): replays with different prefixes
    share no prompt, so none is served from an earlier replay's prefix cache.
    """
    rng = random.Random(seed)
    t = 0.0
    programs: list[ProgramSpec] = []
    for i in range(num_programs):
        long = i % long_every == 0
        programs.append(
            chain(
                f"{prefix}{'long' if long else 'short'}{i}",
                num_calls=4 if long else 2,
                prompt=256 if long else 32,
                output=128 if long else 8,
                arrival=t,
                workload="long" if long else "short",
            )
        )
        t += rng.expovariate(rate)
    return programs


def map_reduce_and_chat(
    *,
    num_map_reduce: int = 4,
    num_chat: int = 12,
    fan_out: int = 4,
    rate: float = 2.0,
    seed: int = 1,
) -> list[ProgramSpec]:
    """Fan-out map-reduce programs mixed with short chat programs, Poisson arrivals."""
    rng = random.Random(seed)
    kinds = ["mr"] * num_map_reduce + ["chat"] * num_chat
    rng.shuffle(kinds)
    t = 0.0
    programs: list[ProgramSpec] = []
    for i, kind in enumerate(kinds):
        if kind == "mr":
            programs.append(map_reduce(f"mr{i}", fan_out=fan_out, arrival=t))
        else:
            programs.append(
                chain(f"chat{i}", num_calls=3, prompt=64, output=16, arrival=t, workload="chat")
            )
        t += rng.expovariate(rate)
    return programs


def poisson_high() -> list[ProgramSpec]:
    """A loaded Poisson mix: 24 programs at 2/s, 1 long in 3 (the batch stays full)."""
    return poisson_mix(rate=2.0, num_programs=24, long_every=3)


def map_reduce_and_chat_high() -> list[ProgramSpec]:
    """A loaded map-reduce plus chat mix: 6 map-reduce and 18 chat programs at 4/s."""
    return map_reduce_and_chat(num_map_reduce=6, num_chat=18, rate=4.0)


WORKLOADS: dict[str, Callable[[], list[ProgramSpec]]] = {
    "burst": burst,
    "poisson": poisson_mix,
    "poisson_high": poisson_high,
    "mapreduce_chat": map_reduce_and_chat,
    "mapreduce_chat_high": map_reduce_and_chat_high,
}
