"""BFCL: ReAct tool-use programs built from the Berkeley Function Calling Leaderboard.

One multi-turn task of BFCL v4 (categories base, long_context, miss_func, miss_param; 800
tasks) is one program. Every ground-truth tool call of a turn is one ReAct step: an LLM call that
emits the call, then the tool's result appended to the history. Each turn ends with one more LLM
call, the final answer. The prompt is BFCL's system prompt, the task's tool docs and the growing
history, counted with a real tokenizer (see ``bfcl_extract``). Final answers are not in the data:
their length is a clipped log-normal with mean 32 tokens (a one-sentence confirmation).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from autellix_backend.workloads.sampling import ClippedLogNormal
from autellix_backend.workloads.spec import CallSpec, ProgramSpec, PromptSegment

NAME = "bfcl"
DATA_FILE = "bfcl_multi_turn.json"

FINAL_ANSWER = ClippedLogNormal(mean=32.0, sigma=0.6, low=4, high=256)
"""Tokens of the final answer that closes each turn (modelled: the data has none)."""
TOOL_SECONDS = 0.05
"""Mean seconds a tool takes to run (exponential); BFCL's tools are local Python."""


@cache
def load_data() -> dict[str, Any]:
    """The shipped token counts of BFCL's multi-turn tasks."""
    text = resources.files("autellix_backend.workloads.data").joinpath(DATA_FILE).read_text()
    data: dict[str, Any] = json.loads(text)
    return data


def generate(num_programs: int, *, seed: int = 0) -> list[ProgramSpec]:
    """``num_programs`` tasks (a seeded shuffle of BFCL's, repeated if more are asked).

    Args:
        num_programs: How many programs.
        seed: Equal seeds give equal workloads.
    """
    data = load_data()
    tasks = data["tasks"]
    rng = np.random.default_rng([seed, 0xBFC1])
    order = rng.permutation(len(tasks))
    return [
        _program(f"{NAME}-{i}", tasks[order[i % len(tasks)]], data, rng)
        for i in range(num_programs)
    ]


def _program(
    program_id: str, task: dict[str, Any], data: dict[str, Any], rng: np.random.Generator
) -> ProgramSpec:
    history = [
        PromptSegment("bfcl:system", data["system_prompt_tokens"]),
        PromptSegment(f"bfcl:docs:{task['docs']}", data["doc_sets"][task["docs"]]),
    ]
    thread = f"{program_id}:main"
    calls: list[CallSpec] = []
    for t, turn in enumerate(task["turns"]):
        history.append(PromptSegment(f"{program_id}:turn{t}", turn["user"]))
        delay = 0.0
        for s, (call_tokens, result_tokens) in enumerate(turn["steps"]):
            call = _call(
                f"{program_id}:turn{t}:step{s}", thread, calls, history, call_tokens, delay
            )
            calls.append(call)
            history.append(PromptSegment(call.output_key, call.output_tokens))
            history.append(PromptSegment(f"{call.call_id}:result", result_tokens))
            delay = float(rng.exponential(TOOL_SECONDS))
        answer = _call(
            f"{program_id}:turn{t}:answer", thread, calls, history, FINAL_ANSWER.draw(rng), delay
        )
        calls.append(answer)
        history.append(PromptSegment(answer.output_key, answer.output_tokens))
    return ProgramSpec(
        program_id=program_id,
        arrival_time=0.0,
        calls=tuple(calls),
        workload=NAME,
        metadata={"task": task["id"]},
    )


def _call(
    call_id: str,
    thread: str,
    earlier: list[CallSpec],
    history: list[PromptSegment],
    output_tokens: int,
    delay: float,
) -> CallSpec:
    return CallSpec(
        call_id=call_id,
        thread_id=thread,
        parent_ids=(earlier[-1].call_id,) if earlier else (),
        prompt=tuple(history),
        output_tokens=output_tokens,
        delay_before=delay if earlier else 0.0,
    )
