"""BFCL as the paper's table describes it: ReAct chains with short prompts and short outputs.

The default ``bfcl`` workload uses BFCL v4's real multi-turn tasks, whose prompts (system prompt,
tool docs, history) average about 5.5k tokens; the paper's table says 735 prompt and 34 decode
tokens per call, 10.75 calls per program (at most 70). This variant matches that table, so a
difference between the two workloads' results separates "our data differs" from "our scheduler
differs".

A program is one thread: ``min(70, Geometric(1 / 10.75))`` calls, each sending a shared system
prompt, one of ``DOC_SETS`` tool-doc sets, the user's request and the history so far (earlier
outputs and their tool results), and generating a tool call (the last call: the answer).
"""

from __future__ import annotations

import numpy as np

from autellix_backend.workloads.sampling import ClippedLogNormal
from autellix_backend.workloads.spec import CallSpec, ProgramSpec, PromptSegment

NAME = "bfcl-paper"

CALLS_MEAN = 10.75
"""The paper's mean LLM calls per program."""
CALLS_MAX = 70
"""The paper's maximum LLM calls per program."""
SYSTEM_PROMPT_TOKENS = 120
"""Shared instruction of every call."""
DOC_SETS = 16
"""Distinct tool-doc sets programs draw from (shared prefixes across programs)."""
DOCS = ClippedLogNormal(mean=150.0, sigma=0.4, low=40, high=600)
"""Tokens of one tool-doc set."""
REQUEST = ClippedLogNormal(mean=40.0, sigma=0.5, low=8, high=256)
"""Tokens of the user's request."""
OUTPUT = ClippedLogNormal(mean=34.14, sigma=0.6, low=4, high=512)
"""Generated tokens per call (the paper's 34.14)."""
TOOL_RESULT = ClippedLogNormal(mean=10.0, sigma=0.7, low=1, high=256)
"""Tokens of a tool's result appended after each call. With the history, the whole prompt
averages about the paper's 735 tokens per call (``autellix bench workloads``)."""
TOOL_SECONDS = 0.05
"""Mean seconds a tool takes to run (exponential)."""


def generate(num_programs: int, *, seed: int = 0) -> list[ProgramSpec]:
    """``num_programs`` ReAct chains fitted to the paper's BFCL row.

    Args:
        num_programs: How many programs.
        seed: Equal seeds give equal workloads.
    """
    rng = np.random.default_rng([seed, 0xBFC2])
    docs = [int(n) for n in DOCS.sample(rng, DOC_SETS)]
    return [_program(f"{NAME}-{i}", docs, rng) for i in range(num_programs)]


def _program(program_id: str, docs: list[int], rng: np.random.Generator) -> ProgramSpec:
    doc_set = int(rng.integers(len(docs)))
    history = [
        PromptSegment("bfcl-paper:system", SYSTEM_PROMPT_TOKENS),
        PromptSegment(f"bfcl-paper:docs:{doc_set}", docs[doc_set]),
        PromptSegment(f"{program_id}:request", REQUEST.draw(rng)),
    ]
    thread = f"{program_id}:main"
    calls: list[CallSpec] = []
    for k in range(min(CALLS_MAX, int(rng.geometric(1.0 / CALLS_MEAN)))):
        call = CallSpec(
            call_id=f"{program_id}:step{k}",
            thread_id=thread,
            parent_ids=(calls[-1].call_id,) if calls else (),
            prompt=tuple(history),
            output_tokens=OUTPUT.draw(rng),
            delay_before=float(rng.exponential(TOOL_SECONDS)) if calls else 0.0,
        )
        calls.append(call)
        history.append(PromptSegment(call.output_key, call.output_tokens))
        history.append(PromptSegment(f"{call.call_id}:result", TOOL_RESULT.draw(rng)))
    return ProgramSpec(program_id=program_id, arrival_time=0.0, calls=tuple(calls), workload=NAME)
