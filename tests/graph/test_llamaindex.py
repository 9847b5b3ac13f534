"""The LlamaIndex integration on real Workflows: programs, step threads, LLM-call DAG, spans
in memory and tagged requests to the real service."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests._deps import installed, require

if not installed("llama_index.core"):  # skips, or fails under CI
    require("llama_index.core", install="pip install 'autellix[llamaindex]'")

from llama_index.core.base.llms.types import (
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
)
from llama_index.core.llms import CustomLLM, MockLLM
from llama_index.core.llms.callbacks import llm_completion_callback
from llama_index.core.workflow import (
    Context,
    Event,
    StartEvent,
    StopEvent,
    Workflow,
    step,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

import autellix_graph
from autellix_graph import protocol
from autellix_integrations import llamaindex
from tests.graph._support import attrs, spans_of_kind


class Part(Event):
    index: int


class Done(Event):
    text: str


def fan_out_workflow(llm: Any, width: int = 2) -> Workflow:
    class FanOut(Workflow):
        @step
        async def plan(self, ctx: Context, ev: StartEvent) -> Part | None:
            await llm.acomplete("plan")
            for i in range(width):
                ctx.send_event(Part(index=i))
            return None

        @step(num_workers=4)
        async def work(self, ev: Part) -> Done:
            await asyncio.sleep(0.05)
            return Done(text=str((await llm.acomplete(f"part {ev.index}")).text))

        @step
        async def join(self, ctx: Context, ev: Done) -> StopEvent | None:
            parts = ctx.collect_events(ev, [Done] * width)
            if parts is None:
                return None
            await llm.acomplete("join")
            return StopEvent(result=len(parts))

    return FanOut(timeout=30)


def run_workflow(workflow: Workflow) -> Any:
    async def go() -> Any:
        return await workflow.run()

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


def _calls_by_step(spans: Any) -> dict[str, list[Any]]:
    names = {
        attrs(s)[protocol.ATTR_THREAD_ID]: attrs(s)[protocol.ATTR_NODE_NAME]
        for s in spans_of_kind(spans, protocol.SPAN_KIND_NODE)
    }
    calls: dict[str, list[Any]] = {}
    for span in sorted(spans_of_kind(spans, protocol.SPAN_KIND_LLM), key=lambda s: s.start_time):
        calls.setdefault(names[attrs(span)[protocol.ATTR_THREAD_ID]], []).append(span)
    return calls


def test_a_workflow_run_is_one_program_with_a_thread_per_step(
    traced: InMemorySpanExporter,
) -> None:
    assert run_workflow(fan_out_workflow(MockLLM(max_tokens=4))) == 2
    spans = traced.get_finished_spans()
    (program,) = spans_of_kind(spans, protocol.SPAN_KIND_PROGRAM)
    assert {attrs(s)[protocol.ATTR_PROGRAM_ID] for s in spans} == {
        attrs(program)[protocol.ATTR_PROGRAM_ID]
    }
    calls = _calls_by_step(spans)
    assert [len(calls[name]) for name in ("plan", "work", "join")] == [1, 2, 1]
    plan_id = attrs(calls["plan"][0])[protocol.ATTR_CALL_ID]
    work_ids = {attrs(s)[protocol.ATTR_CALL_ID] for s in calls["work"]}
    assert all(list(attrs(s)[protocol.ATTR_LLM_PARENT_IDS]) == [plan_id] for s in calls["work"])
    join_parents = set(attrs(calls["join"][0])[protocol.ATTR_LLM_PARENT_IDS])
    assert join_parents and join_parents <= work_ids


class ServiceLLM(CustomLLM):
    """A minimal LlamaIndex LLM over the service's OpenAI API, through a tagging client."""

    base_url: str
    model: str

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name=self.model)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        with autellix_graph.http_client(timeout=30) as client:
            body = {
                "model": self.model,
                "max_tokens": 4,
                "messages": [{"role": "user", "content": prompt}],
            }
            reply = client.post(f"{self.base_url}/v1/chat/completions", json=body).json()
        return CompletionResponse(text=reply["choices"][0]["message"]["content"])

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        raise NotImplementedError


def test_workflow_calls_reach_the_service_tagged(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(protocol.ENV_OTLP_ENDPOINT, raising=False)
    model = autellix_graph._clients.served_model(f"{service}/v1")
    llamaindex.instrument(base_url=service, sessions=False)
    try:
        assert run_workflow(fan_out_workflow(ServiceLLM(base_url=service, model=model))) == 2
        assert llamaindex.force_flush()
    finally:
        llamaindex.uninstrument()
    programs = httpx.get(f"{service}/v1/programs", timeout=10).json()["data"]
    detail = None
    for summary in programs:
        candidate = httpx.get(f"{service}/v1/programs/{summary['program_id']}", timeout=10).json()
        if any(t["thread_id"].startswith("plan:") for t in candidate["threads"]):
            detail = candidate
    assert detail is not None
    calls = {c["call_id"]: c for c in detail["calls"]}
    assert len(calls) == 4
    by_step: dict[str, list[dict[str, Any]]] = {}
    for call in calls.values():
        by_step.setdefault(call["thread_id"].split(":")[0], []).append(call)
    (plan,) = by_step["plan"]
    assert all(c["parent_ids"] == [plan["call_id"]] for c in by_step["work"])
    (join,) = by_step["join"]
    work_ids = {c["call_id"] for c in by_step["work"]}
    # Workflows have no supersteps: the join depends on the calls of the steps that finished
    # before it started, which may still include the plan call when a worker's exit is seen
    # late; it always depends on a worker and never on anything outside the program.
    assert set(join["parent_ids"]) & work_ids
    assert set(join["parent_ids"]) <= work_ids | {plan["call_id"]}
