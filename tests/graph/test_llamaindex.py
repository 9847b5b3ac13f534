"""The LlamaIndex integration on real Workflows: programs, step threads, the LLM-call DAG from
the event flow (exact under any timing), failures, spans in memory, and tagged requests to the
real service through ``openai_like()``."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest

from tests._deps import installed, require

if not installed("llama_index.core"):  # skips, or fails under CI
    require("llama_index.core", install="pip install 'autellix[llamaindex]'")
if not installed("llama_index.llms.openai_like"):
    require("llama_index.llms.openai_like", install="pip install 'autellix[llamaindex]'")

from llama_index.core.base.llms.types import (
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.llms import CustomLLM, MockLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.workflow import Context, Event, StartEvent, StopEvent, Workflow, step
from llama_index.llms.openai_like import OpenAILike
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import autellix_graph
from autellix_graph import protocol
from autellix_integrations import llamaindex
from examples import llamaindex_research
from examples._common import RunContext, shape_from_program
from tests.graph._support import attrs, spans_of_kind

WIDTH = 3


class Part(Event):
    index: int


class Done(Event):
    index: int


class Boom(RuntimeError):
    """The failure a worker raises on purpose."""


def fan_out(
    llm: Any,
    *,
    delays: Sequence[float] = (0.0,) * WIDTH,
    failing: int | None = None,
    sync_calls: bool = False,
    seen: list[str | None] | None = None,
) -> Workflow:
    """start (1 call) -> ``ctx.send_event`` to WIDTH workers (1 call each, after ``delays``)
    -> a join that collects their events (1 call). ``failing`` names a worker that raises;
    ``sync_calls`` makes the workers call the blocking ``complete`` with no await before it."""

    class FanOut(Workflow):
        @step
        async def start(self, ctx: Context, ev: StartEvent) -> Part | None:
            if seen is not None:
                seen.append(autellix_graph.current_program_id())
            await llm.acomplete("plan")
            for i in range(WIDTH):
                ctx.send_event(Part(index=i))
            return None

        @step(num_workers=WIDTH)
        async def work(self, ev: Part) -> Done:
            if ev.index == failing:
                await asyncio.sleep(0.05)
                raise Boom("worker failed")
            if sync_calls:
                llm.complete(f"part {ev.index}")
            else:
                await asyncio.sleep(delays[ev.index])
                await llm.acomplete(f"part {ev.index}")
            return Done(index=ev.index)

        @step
        async def join(self, ctx: Context, ev: Done) -> StopEvent | None:
            parts = ctx.collect_events(ev, [Done] * WIDTH)
            if parts is None:
                return None
            await llm.acomplete("join")
            return StopEvent(result=len(parts))

    return FanOut(timeout=30)


def run(workflow: Workflow, **kwargs: Any) -> Any:
    async def go() -> Any:
        return await workflow.run(**kwargs)

    return asyncio.run(go())


@pytest.fixture
def traced(
    provider: TracerProvider, exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> Iterator[InMemorySpanExporter]:
    for name in (protocol.ENV_BACKEND_URL, protocol.ENV_OTLP_ENDPOINT, protocol.ENV_DISABLED):
        monkeypatch.delenv(name, raising=False)
    llamaindex.instrument(tracer_provider=provider)
    try:
        yield exporter
    finally:
        llamaindex.uninstrument()


def calls_by_step(spans: Sequence[ReadableSpan]) -> dict[str, list[tuple[str, set[str]]]]:
    """Step name -> (call id, LLM parent ids) of its calls, from the spans."""
    names = {
        attrs(s)[protocol.ATTR_THREAD_ID]: attrs(s)[protocol.ATTR_NODE_NAME]
        for s in spans_of_kind(spans, protocol.SPAN_KIND_NODE)
    }
    calls: dict[str, list[tuple[str, set[str]]]] = {}
    for span in spans_of_kind(spans, protocol.SPAN_KIND_LLM):
        a = attrs(span)
        call = (str(a[protocol.ATTR_CALL_ID]), set(a[protocol.ATTR_LLM_PARENT_IDS]))
        calls.setdefault(names[a[protocol.ATTR_THREAD_ID]], []).append(call)
    return calls


def assert_fan_out_dag(calls: dict[str, list[tuple[str, set[str]]]]) -> None:
    """workers <- start, join <- every worker: exactly, nothing more."""
    ((start_id, start_parents),) = calls["start"]
    assert start_parents == set()
    assert len(calls["work"]) == WIDTH
    assert all(parents == {start_id} for _, parents in calls["work"])
    ((_, join_parents),) = calls["join"]
    assert join_parents == {call_id for call_id, _ in calls["work"]}


def test_a_workflow_run_is_one_program_with_a_thread_per_step(
    traced: InMemorySpanExporter,
) -> None:
    assert run(fan_out(MockLLM(max_tokens=4))) == WIDTH
    spans = traced.get_finished_spans()
    (program,) = spans_of_kind(spans, protocol.SPAN_KIND_PROGRAM)
    assert {attrs(s)[protocol.ATTR_PROGRAM_ID] for s in spans} == {
        attrs(program)[protocol.ATTR_PROGRAM_ID]
    }
    assert all(s.context.trace_id == program.context.trace_id for s in spans)
    assert_fan_out_dag(calls_by_step(spans))


@pytest.mark.parametrize("delays", [(0.0, 0.1, 0.2), (0.2, 0.1, 0.0), (0.15, 0.0, 0.3)])
def test_the_join_depends_on_every_worker_whatever_order_they_finish_in(
    traced: InMemorySpanExporter, delays: tuple[float, ...]
) -> None:
    """``collect_events`` runs the join once per arriving event; the call made by the run
    that completes the collection depends on all the workers, not on the first to finish."""
    assert run(fan_out(MockLLM(max_tokens=4), delays=delays)) == WIDTH
    assert_fan_out_dag(calls_by_step(traced.get_finished_spans()))


def test_a_step_that_returns_a_list_of_events_is_the_emitter_of_each(
    traced: InMemorySpanExporter,
) -> None:
    llm = MockLLM(max_tokens=4)

    class ReturnsList(Workflow):
        @step
        async def start(self, ev: StartEvent) -> list[Part]:
            await llm.acomplete("plan")
            return [Part(index=i) for i in range(WIDTH)]

        @step(num_workers=WIDTH)
        async def work(self, ev: Part) -> Done:
            await asyncio.sleep(0.05 * (WIDTH - ev.index))
            await llm.acomplete(f"part {ev.index}")
            return Done(index=ev.index)

        @step
        async def join(self, ctx: Context, ev: Done) -> StopEvent | None:
            if ctx.collect_events(ev, [Done] * WIDTH) is None:
                return None
            await llm.acomplete("join")
            return StopEvent(result=WIDTH)

    assert run(ReturnsList(timeout=30)) == WIDTH
    assert_fan_out_dag(calls_by_step(traced.get_finished_spans()))


class SyncOnlyLLM(CustomLLM):
    """A LlamaIndex LLM with only the blocking ``complete`` (its ``acomplete`` blocks too)."""

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="sync-only")

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        return CompletionResponse(text="ok")

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        raise NotImplementedError


def test_a_sync_only_llm_runs_workers_one_by_one_but_the_dag_keeps_them_parallel(
    traced: InMemorySpanExporter,
) -> None:
    """The blocking calls serialise the workers; timing would make a chain start -> w0 -> w1
    -> w2 -> join, which the program does not have. The event flow says fan-out/fan-in."""
    assert run(fan_out(SyncOnlyLLM(), sync_calls=True)) == WIDTH
    spans = traced.get_finished_spans()
    workers = sorted(
        (s for s in spans_of_kind(spans, protocol.SPAN_KIND_NODE) if s.name == "work"),
        key=lambda s: s.start_time or 0,
    )
    assert all((a.end_time or 0) <= (b.start_time or 0) for a, b in itertools.pairwise(workers))
    assert_fan_out_dag(calls_by_step(spans))


def test_the_run_names_its_program_and_steps_can_read_it(traced: InMemorySpanExporter) -> None:
    seen: list[str | None] = []
    assert run(fan_out(MockLLM(max_tokens=4), seen=seen), autellix_program_id="order-7") == WIDTH
    assert seen == ["order-7"]
    assert autellix_graph.current_program_id() is None
    assert {attrs(s)[protocol.ATTR_PROGRAM_ID] for s in traced.get_finished_spans()} == {"order-7"}


def test_runs_of_one_conversation_share_its_session(traced: InMemorySpanExporter) -> None:
    run(fan_out(MockLLM(max_tokens=4)), autellix_program_id="turn-1", session_id="chat-9")
    run(fan_out(MockLLM(max_tokens=4)), autellix_program_id="turn-2", session_id="chat-9")
    run(fan_out(MockLLM(max_tokens=4)), autellix_program_id="alone")
    sessions: dict[str, set[str]] = {}
    for span in traced.get_finished_spans():
        values = attrs(span)
        sessions.setdefault(values[protocol.ATTR_PROGRAM_ID], set()).add(
            values[protocol.OPENINFERENCE_SESSION_ID]
        )
    assert sessions == {"turn-1": {"chat-9"}, "turn-2": {"chat-9"}, "alone": {"alone"}}


def test_a_failing_step_is_an_error_the_steps_stopped_for_it_are_cancelled_and_the_program_failed(
    traced: InMemorySpanExporter,
) -> None:
    with pytest.raises(Exception, match="worker failed"):
        run(fan_out(MockLLM(max_tokens=4), delays=(1.0,) * WIDTH, failing=1))
    spans = traced.get_finished_spans()
    workers = [s for s in spans_of_kind(spans, protocol.SPAN_KIND_NODE) if s.name == "work"]
    states = sorted(str(attrs(s).get(protocol.ATTR_STATE)) for s in workers)
    assert states == ["cancelled", "cancelled", "error"]
    (failed,) = [s for s in workers if attrs(s).get(protocol.ATTR_STATE) == "error"]
    assert attrs(failed)[protocol.ATTR_ERROR_KIND] == "Boom"
    assert failed.status.status_code.name == "ERROR"
    assert all(
        s.status.status_code.name == "UNSET"
        for s in workers
        if attrs(s).get(protocol.ATTR_STATE) == "cancelled"
    )
    (program,) = spans_of_kind(spans, protocol.SPAN_KIND_PROGRAM)
    assert attrs(program)[protocol.ATTR_STATE] == "failed"
    assert program.status.status_code.name == "ERROR"


# Against the real service -------------------------------------------------------------------


@pytest.fixture
def attached(service: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The integration with its documented defaults (sessions on) against the service."""
    monkeypatch.delenv(protocol.ENV_OTLP_ENDPOINT, raising=False)
    llamaindex.instrument(base_url=service)
    try:
        yield service
    finally:
        llamaindex.uninstrument()


def program_row(service: str, program_id: str) -> dict[str, Any]:
    assert llamaindex.force_flush()
    response = httpx.get(f"{service}/v1/programs/{program_id}", timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_openai_like_calls_reach_the_service_tagged_with_the_exact_dag(attached: str) -> None:
    llm = llamaindex.openai_like(base_url=attached, max_tokens=4)
    workflow = fan_out(llm, delays=(0.2, 0.0, 0.1))
    assert run(workflow, autellix_program_id="li-tagged") == WIDTH
    row = program_row(attached, "li-tagged")
    assert row["num_calls"] == WIDTH + 2
    assert row["state"] == "finished"
    by_step: dict[str, list[dict[str, Any]]] = {}
    for call in row["calls"]:
        by_step.setdefault(call["thread_id"].split(":")[0], []).append(call)
    (start,) = by_step["start"]
    assert all(c["parent_ids"] == [start["call_id"]] for c in by_step["work"])
    (join,) = by_step["join"]
    assert set(join["parent_ids"]) == {c["call_id"] for c in by_step["work"]}


def test_a_failed_workflow_is_failed_in_the_service_row(attached: str) -> None:
    llm = llamaindex.openai_like(base_url=attached, max_tokens=4)
    with pytest.raises(Exception, match="worker failed"):
        run(fan_out(llm, delays=(1.0,) * WIDTH, failing=1), autellix_program_id="li-failed")
    row = program_row(attached, "li-failed")
    assert row["state"] == "failed"
    statuses = sorted(n["status"] for n in row["dag"]["nodes"] if n["name"] == "work")
    assert statuses == ["cancelled", "cancelled", "error"]


def test_an_llm_whose_async_client_is_untagged_is_warned_about_once(
    attached: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``OpenAILike(http_client=...)`` alone: the async steps' requests go out untagged."""
    model = autellix_graph._clients.served_model(f"{attached}/v1")
    llm = OpenAILike(
        model=model,
        api_base=f"{attached}/v1",
        api_key="unused",
        is_chat_model=True,
        max_tokens=4,
        http_client=autellix_graph.http_client(timeout=30),
    )
    with caplog.at_level(logging.WARNING, logger="autellix_graph"):
        assert run(fan_out(llm), autellix_program_id="li-untagged") == WIDTH
    warnings = [r for r in caplog.records if "sent no request tagged" in r.getMessage()]
    assert len(warnings) == 1
    assert program_row(attached, "li-untagged")["num_calls"] == 0


@pytest.mark.parametrize("seed", [0, 3])
def test_the_llamaindex_example_leaves_the_expected_dag_in_the_service(
    attached: str, seed: int
) -> None:
    run_ = llamaindex_research.run(RunContext(attached, token_scale=0.1, seed=seed))
    row = program_row(attached, run_.program_id)
    assert row["num_calls"] == run_.num_llm_calls
    assert shape_from_program(row) == run_.expected
