"""BFCL tool-heavy: BFCL's multi-turn programs with named tools that take seconds, not ms.

The programs are ``bfcl``'s (same tasks, prompts, tool docs and steps); what changes is the
time between a call and the next one. Each ReAct step's tool is one of the task's APIs
(seeded), recorded as ``metadata["tool:<next call id>"]`` so a scheduler can learn per-tool
durations, and its duration is drawn from that API's latency class; the gap before a turn's
first call is the ``user`` typing (a service-call class). BFCL's own tools are
local Python stubs that return in microseconds; deployed agents call services. The classes
are modelled, not measured (no tool-latency trace ships with any package we can use):
log-normals with a 0.8 spread whose means follow the kind of work each API stands for.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from autellix_backend.workloads import bfcl
from autellix_backend.workloads.sampling import ClippedLogNormal
from autellix_backend.workloads.spec import ProgramSpec

NAME = "bfcl_tools"

LOCAL_MS = ClippedLogNormal(mean=400.0, sigma=0.8, low=20, high=10_000)
"""A local command: a file system or a calculator (milliseconds)."""
SERVICE_MS = ClippedLogNormal(mean=1_500.0, sigma=0.8, low=100, high=30_000)
"""A web service call: messages, posts, tickets, a car's remote API (milliseconds)."""
TRANSACTION_MS = ClippedLogNormal(mean=4_000.0, sigma=0.8, low=300, high=60_000)
"""A multi-step transaction with an external party: bookings, trades (milliseconds)."""

TOOL_LATENCY: dict[str, ClippedLogNormal] = {
    "GorillaFileSystem": LOCAL_MS,
    "MathAPI": LOCAL_MS,
    "MessageAPI": SERVICE_MS,
    "TwitterAPI": SERVICE_MS,
    "TicketAPI": SERVICE_MS,
    "VehicleControlAPI": SERVICE_MS,
    "TravelAPI": TRANSACTION_MS,
    "TradingBot": TRANSACTION_MS,
}
"""Latency class of each BFCL API (an unknown API is a service call)."""
USER = "user"
"""Tool name of the gap before a turn's first call: the user types the next request."""


def generate(num_programs: int, *, seed: int = 0) -> list[ProgramSpec]:
    """``num_programs`` BFCL programs whose tool calls take their APIs' times.

    Args:
        num_programs: How many programs.
        seed: Equal seeds give equal workloads.
    """
    rng = np.random.default_rng([seed, 0x7001])
    return [_with_tools(p, rng) for p in bfcl.generate(num_programs, seed=seed)]


def apis(program: ProgramSpec) -> list[str]:
    """The BFCL APIs whose docs the program's prompt carries."""
    docs = next(s.key for s in program.calls[0].prompt if s.key.startswith("bfcl:docs:"))
    return [name.split("-")[0] for name in docs.removeprefix("bfcl:docs:").split("+")]


def _with_tools(program: ProgramSpec, rng: np.random.Generator) -> ProgramSpec:
    names = apis(program)
    metadata = dict(program.metadata)
    calls = []
    for call in program.calls:
        if call.parent_ids:
            # bfcl gives a step after a tool a delay, and a turn's first call none.
            tool = names[int(rng.integers(len(names)))] if call.delay_before > 0 else USER
            latency = TOOL_LATENCY.get(tool, SERVICE_MS)
            metadata[f"tool:{call.call_id}"] = tool
            call = dataclasses.replace(call, delay_before=latency.draw(rng) / 1000.0)
        calls.append(call)
    return dataclasses.replace(program, calls=tuple(calls), workload=NAME, metadata=metadata)
