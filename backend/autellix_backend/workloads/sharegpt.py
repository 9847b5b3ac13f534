"""ShareGPT-shaped chat: multi-turn conversations synthesised from fitted distributions.

No copy of ShareGPT can be downloaded here, so each conversation is drawn from three clipped
log-normals fitted to the paper's statistics (calls per program 6.66 mean / 80 max, prefill 255.65
new tokens per call, decode 276.81 tokens per call). A program is one conversation; turn ``k``
sends the whole history (every earlier user message and reply) plus the new user message, so
calls of one program share a growing prefix, as a real chatbot's do. When the history and the
reply would exceed ``max_context`` tokens, the oldest turns are dropped (as chat front ends do).
"""

from __future__ import annotations

import numpy as np

from autellix_backend.workloads.sampling import ClippedLogNormal
from autellix_backend.workloads.spec import CallSpec, ProgramSpec, PromptSegment

NAME = "sharegpt"

TURNS = ClippedLogNormal(mean=6.66, sigma=1.1, low=1, high=80)
"""Calls (turns) per conversation: mean 6.66, max 80 (the paper's table)."""
USER_TOKENS = ClippedLogNormal(mean=255.65, sigma=1.2, low=4, high=4096)
"""New prompt tokens per call (the user's message): mean 255.65."""
REPLY_TOKENS = ClippedLogNormal(mean=276.81, sigma=0.9, low=4, high=2048)
"""Tokens generated per call (the assistant's reply): mean 276.81."""


MAX_CONTEXT = 8192
"""Default context window (Llama-3-8B's): prompt plus reply never exceed it."""


def generate(
    num_programs: int,
    *,
    seed: int = 0,
    think_time: float = 0.0,
    max_context: int = MAX_CONTEXT,
) -> list[ProgramSpec]:
    """``num_programs`` conversations, all arriving at t=0 (see ``arrivals`` to spread them).

    Args:
        num_programs: How many conversations.
        seed: Equal seeds give equal workloads.
        think_time: Seconds the user takes between a reply and the next message.
        max_context: Context window in tokens; older turns are dropped to stay inside it.
    """
    if max_context < USER_TOKENS.high + REPLY_TOKENS.high:
        raise ValueError(f"max_context must be at least {USER_TOKENS.high + REPLY_TOKENS.high}")
    rng = np.random.default_rng([seed, 0x5A6E])
    return [_conversation(f"{NAME}-{i}", rng, think_time, max_context) for i in range(num_programs)]


def _conversation(
    program_id: str, rng: np.random.Generator, think_time: float, max_context: int
) -> ProgramSpec:
    num_turns = TURNS.draw(rng)
    users = USER_TOKENS.sample(rng, num_turns)
    replies = REPLY_TOKENS.sample(rng, num_turns)
    history: list[PromptSegment] = []
    calls: list[CallSpec] = []
    for turn in range(num_turns):
        history.append(PromptSegment(f"{program_id}:user{turn}", int(users[turn])))
        while sum(s.num_tokens for s in history) + int(replies[turn]) > max_context:
            del history[:2]
        call = CallSpec(
            call_id=f"{program_id}:c{turn}",
            thread_id=f"{program_id}:main",
            parent_ids=(calls[-1].call_id,) if calls else (),
            prompt=tuple(history),
            output_tokens=int(replies[turn]),
            delay_before=think_time if calls else 0.0,
        )
        calls.append(call)
        history.append(PromptSegment(call.output_key, call.output_tokens))
    return ProgramSpec(program_id=program_id, arrival_time=0.0, calls=tuple(calls), workload=NAME)
