"""Summary statistics of a workload, and the paper's table to compare them with."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from autellix_backend.workloads.spec import ProgramSpec


@dataclass(frozen=True, slots=True)
class WorkloadStats:
    """The columns of the paper's workload table, plus the prompt measure it leaves implicit."""

    num_programs: int
    calls_mean: float
    """LLM calls per program, mean."""
    calls_max: int
    """LLM calls per program, max."""
    prefill_mean: float
    """Whole prompt tokens per call (history included), mean."""
    new_prefill_mean: float
    """Prompt tokens per call not seen in an earlier call of the same program, mean."""
    decode_mean: float
    """Generated tokens per call, mean."""


PAPER_STATS: dict[str, WorkloadStats] = {
    "sharegpt": WorkloadStats(0, 6.66, 80, 255.65, 255.65, 276.81),
    "bfcl": WorkloadStats(0, 10.75, 70, 735.06, 735.06, 34.14),
    "bfcl-paper": WorkloadStats(0, 10.75, 70, 735.06, 735.06, 34.14),
    "lats": WorkloadStats(0, 159.7, 400, 467.2, 467.2, 72.6),
}
"""The paper's table (one prefill column; it does not say whether history is counted)."""


def new_prompt_tokens(program: ProgramSpec) -> list[int]:
    """Per call, the prompt tokens in segments no earlier call of the program sent or produced."""
    seen: set[str] = set()
    counts = []
    for call in program.calls:
        counts.append(sum(s.num_tokens for s in call.prompt if s.key not in seen))
        seen.update(s.key for s in call.prompt)
        seen.add(call.output_key)
    return counts


def workload_stats(programs: Sequence[ProgramSpec]) -> WorkloadStats:
    """Statistics of ``programs`` in the paper's terms."""
    if not programs:
        raise ValueError("no programs")
    calls = [c for p in programs for c in p.calls]
    return WorkloadStats(
        num_programs=len(programs),
        calls_mean=len(calls) / len(programs),
        calls_max=max(p.num_calls for p in programs),
        prefill_mean=_mean(c.prompt_tokens for c in calls),
        new_prefill_mean=_mean(n for p in programs for n in new_prompt_tokens(p)),
        decode_mean=_mean(c.output_tokens for c in calls),
    )


def _mean(values: Iterable[int]) -> float:
    items = list(values)
    return sum(items) / len(items)
