"""Replay a workload of ``ProgramSpec`` programs against any ``EngineAdapter`` in real time.

Each program arrives at its ``arrival_time``; a call is sent when its parents have finished
(plus its ``delay_before``), with a prompt of exactly its token count (token ids derived from
its segments' keys, so shared segments hit the prefix cache) and ``ignore_eos`` so it
generates exactly its ``output_tokens``. The replay is the front end: it owns the process
table through a ``ProgramTracker`` as the gateway does, each call's tag carries its program's
snapshot, the engine's reported service is folded back when the call ends, and the program's
new snapshot goes to the engine's queue. Results use the simulator's types, so a
real run and a simulated one compare field by field.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from autellix_backend.core import CallArrival, Policy, ProgramTracker
from autellix_backend.engines.base import (
    EngineAdapter,
    EngineRequest,
    EngineUsage,
    ProgramTag,
    RequestKind,
)
from autellix_backend.sim.results import ProgramResult
from autellix_backend.spec import CallSpec, ProgramSpec
from autellix_protocol.snapshot import ZERO_SNAPSHOT, ProgramSnapshot


class PriorityHint(StrEnum):
    """What each call's ``ProgramTag.snapshot`` carries."""

    SERVICE = "service"
    """The program's attained engine service, from the tracker (Autellix's backend)."""
    TOKENS = "tokens"
    """Tokens the program has generated so far (client-side priority for stock vLLM)."""
    NONE = "none"
    """Nothing (an empty snapshot)."""


@dataclass(frozen=True, slots=True)
class ReplayedCall:
    """One call as the client saw it."""

    call_id: str
    program_id: str
    send_time: float
    finish_time: float
    output_tokens: int
    usage: EngineUsage | None
    report: Mapping[str, Any] = field(default_factory=dict)
    """The engine's ``extra`` on the last chunk (the plugin's service report)."""


@dataclass(frozen=True, slots=True)
class ReplayResult:
    programs: tuple[ProgramResult, ...]
    calls: tuple[ReplayedCall, ...]
    duration: float


async def replay(
    engine: EngineAdapter,
    programs: Sequence[ProgramSpec],
    *,
    policy: Policy | str = Policy.PLAS,
    hint: PriorityHint = PriorityHint.SERVICE,
    vocab_size: int = 600,
    time_scale: float = 1.0,
) -> ReplayResult:
    """Run ``programs`` on ``engine`` and measure each program's latency."""
    runner = _Replay(engine, Policy.parse(policy), hint, vocab_size, time_scale)
    return await runner.run(programs)


class _Replay:
    def __init__(
        self,
        engine: EngineAdapter,
        policy: Policy,
        hint: PriorityHint,
        vocab_size: int,
        time_scale: float,
    ) -> None:
        self.engine = engine
        self.tracker = ProgramTracker(policy)
        self.tracker.subscribe(engine.refresh)
        self.hint = hint
        self.vocab_size = vocab_size
        self.time_scale = time_scale
        self.tokens_so_far: dict[str, int] = {}
        self.calls: list[ReplayedCall] = []
        self.origin = 0.0

    async def run(self, programs: Sequence[ProgramSpec]) -> ReplayResult:
        self.origin = time.monotonic()
        results = await asyncio.gather(*(self._program(p) for p in programs))
        return ReplayResult(
            programs=tuple(results),
            calls=tuple(self.calls),
            duration=time.monotonic() - self.origin,
        )

    def _now(self) -> float:
        return time.monotonic() - self.origin

    async def _program(self, program: ProgramSpec) -> ProgramResult:
        await asyncio.sleep(max(0.0, program.arrival_time * self.time_scale - self._now()))
        start = self._now()
        self.tracker.table.start_program(program.program_id, start)
        self.tokens_so_far[program.program_id] = 0
        done: dict[str, asyncio.Task[None]] = {}
        for call in program.calls:
            parents = [done[p] for p in call.parent_ids if p in done]
            done[call.call_id] = asyncio.create_task(self._call(program, call, parents))
        await asyncio.gather(*done.values())
        finish = self._now()
        record = self.tracker.table.end_program(program.program_id, finish)
        tokens = sum(c.output_tokens for c in program.calls)
        latency = finish - start
        return ProgramResult(
            program_id=program.program_id,
            workload=program.workload,
            arrival_time=start,
            finish_time=finish,
            latency=latency,
            output_tokens=tokens,
            num_calls=program.num_calls,
            total_wait=record.total_wait,
            latency_per_token=latency / tokens if tokens else latency,
        )

    async def _call(
        self, program: ProgramSpec, call: CallSpec, parents: list[asyncio.Task[None]]
    ) -> None:
        if parents:
            await asyncio.gather(*parents)
        if call.delay_before > 0:
            await asyncio.sleep(call.delay_before * self.time_scale)
        now = self._now()
        arrival = CallArrival(
            call_id=call.call_id,
            program_id=program.program_id,
            thread_id=call.thread_id,
            parent_ids=call.parent_ids,
            prompt_tokens=call.prompt_tokens,
            max_tokens=call.output_tokens,
        )
        record = self.tracker.admit(arrival, now)
        tag = ProgramTag(
            program_id=program.program_id,
            thread_id=call.thread_id,
            call_id=call.call_id,
            parent_ids=call.parent_ids,
            snapshot=self._hint(program.program_id, record.snapshot),
        )
        request = EngineRequest(
            request_id=call.call_id,
            kind=RequestKind.COMPLETION,
            body={
                "prompt": prompt_token_ids(call, self.vocab_size),
                "max_tokens": call.output_tokens,
                "ignore_eos": True,
                "temperature": 0.0,
            },
            tag=tag,
            prompt_tokens=call.prompt_tokens,
        )
        usage: EngineUsage | None = None
        report: Mapping[str, Any] = {}
        num_tokens = 0
        async for chunk in self.engine.generate(request):
            if chunk.usage is not None:
                usage = chunk.usage
                report = chunk.extra
        if usage is not None:
            num_tokens = usage.completion_tokens
            record.num_output_tokens = num_tokens
        finish = self._now()
        service = usage.service if usage is not None else None
        self.tracker.complete(record, finish, service=service)
        self.tokens_so_far[program.program_id] += num_tokens
        self.calls.append(
            ReplayedCall(call.call_id, program.program_id, now, finish, num_tokens, usage, report)
        )

    def _hint(self, program_id: str, snapshot: ProgramSnapshot) -> ProgramSnapshot:
        if self.hint is PriorityHint.SERVICE:
            return snapshot
        if self.hint is PriorityHint.TOKENS:
            return ProgramSnapshot(service=float(self.tokens_so_far.get(program_id, 0)))
        return ZERO_SNAPSHOT


def prompt_token_ids(call: CallSpec, vocab_size: int, *, first_id: int = 8) -> list[int]:
    """Deterministic token ids for ``call``'s prompt; equal segment keys give equal ids."""
    if vocab_size <= first_id:
        raise ValueError("vocab_size must exceed first_id")
    ids: list[int] = []
    span = vocab_size - first_id
    for segment in call.prompt:
        seed = hashlib.blake2b(segment.key.encode(), digest_size=8).digest()
        stream = b""
        counter = 0
        while len(stream) < 2 * segment.num_tokens:
            stream += hashlib.blake2b(seed + counter.to_bytes(4, "little")).digest()
            counter += 1
        ids.extend(
            first_id + int.from_bytes(stream[2 * i : 2 * i + 2], "little") % span
            for i in range(segment.num_tokens)
        )
    return ids or [first_id]
