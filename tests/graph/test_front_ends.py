"""What both front ends share through ``ProgramRecorder``: failure states on LangGraph (the
LlamaIndex twin is in ``test_llamaindex.py``), and attaching with ``opentelemetry-instrument``
through the ``opentelemetry_instrumentor`` entry points, in a real subprocess."""

from __future__ import annotations

import asyncio
import json
import operator
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, TypedDict

import httpx
import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import autellix_graph
from autellix_graph import protocol
from tests.graph._support import attrs, spans_of_kind


class Items(TypedDict):
    items: Annotated[list[str], operator.add]


def failing_fan_out() -> Any:
    """plan -> Send x3 -> work; worker "1" raises while the other two are still waiting."""
    llm = FakeListChatModel(responses=["r"] * 10)

    async def plan(state: Items) -> dict[str, list[str]]:
        return {"items": [str((await llm.ainvoke("plan")).content)]}

    def fan_out(state: Items) -> list[Send]:
        return [Send("work", {"items": [str(i)]}) for i in range(3)]

    async def work(state: Items) -> dict[str, list[str]]:
        if state["items"] == ["1"]:
            await asyncio.sleep(0.05)
            raise KeyError("worker failed")
        await asyncio.sleep(5)
        return {"items": [str((await llm.ainvoke("work")).content)]}

    graph = StateGraph(Items)
    graph.add_node("plan", plan)
    graph.add_node("work", work)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", fan_out, ["work"])
    graph.add_edge("work", END)
    return graph.compile()


def test_langgraph_failing_task_is_an_error_the_cancelled_ones_cancelled_the_program_failed(
    instrumented: InMemorySpanExporter,
) -> None:
    with pytest.raises(KeyError):
        asyncio.run(failing_fan_out().ainvoke({"items": []}))
    spans = instrumented.get_finished_spans()
    workers = [s for s in spans_of_kind(spans, protocol.SPAN_KIND_NODE) if s.name == "work"]
    assert sorted(str(attrs(s).get(protocol.ATTR_STATE)) for s in workers) == [
        "cancelled",
        "cancelled",
        "error",
    ]
    (program,) = spans_of_kind(spans, protocol.SPAN_KIND_PROGRAM)
    assert attrs(program)[protocol.ATTR_STATE] == "failed"
    assert attrs(program)[protocol.ATTR_ERROR_KIND] == "KeyError"


def test_a_failed_langgraph_run_is_failed_in_the_service_row(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(protocol.ENV_OTLP_ENDPOINT, raising=False)
    autellix_graph.instrument(base_url=service)
    config = {"metadata": {protocol.PROGRAM_ID_METADATA_KEY: "lg-failed"}}
    try:
        with pytest.raises(KeyError):
            asyncio.run(failing_fan_out().ainvoke({"items": []}, config))
        assert autellix_graph.force_flush()
    finally:
        autellix_graph.uninstrument()
    row = httpx.get(f"{service}/v1/programs/lg-failed", timeout=10).json()
    assert row["state"] == "failed"
    statuses = sorted(n["status"] for n in row["dag"]["nodes"] if n["name"] == "work")
    assert statuses == ["cancelled", "cancelled", "error"]


APP = """
import json
from typing import Any

from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

import autellix_graph


class Headers(FakeListChatModel):
    seen: list[dict[str, str]] = []

    def _call(self, *args: Any, **kwargs: Any) -> str:
        self.seen.append(autellix_graph.current_headers())
        return super()._call(*args, **kwargs)


class State(TypedDict):
    text: str


llm = Headers(responses=["hi"])
graph = StateGraph(State)
graph.add_node("ask", lambda state: {"text": str(llm.invoke("hello").content)})
graph.add_edge(START, "ask")
graph.add_edge("ask", END)
graph.compile().invoke({"text": ""})
from autellix_integrations.llamaindex import AutellixLlamaIndexInstrumentor

print(json.dumps({
    "langgraph": autellix_graph.AutellixInstrumentor().is_instrumented,
    "llamaindex": AutellixLlamaIndexInstrumentor().is_instrumented_by_opentelemetry,
    "headers": llm.seen,
}))
"""


def run_app(tmp_path: Path, *prefix: str) -> dict[str, Any]:
    app = tmp_path / "app.py"
    app.write_text(APP)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTELLIX_", "OTEL_"))}
    env["OTEL_TRACES_EXPORTER"] = "none"
    env["OTEL_METRICS_EXPORTER"] = "none"
    env["OTEL_LOGS_EXPORTER"] = "none"
    done = subprocess.run(
        [*prefix, sys.executable, str(app)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_opentelemetry_instrument_attaches_both_front_ends_with_no_code_change(
    tmp_path: Path,
) -> None:
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    plain = run_app(tmp_path)
    assert plain == {"langgraph": False, "llamaindex": False, "headers": [{}]}
    attached = run_app(tmp_path, str(instrument))
    assert attached["langgraph"] is True
    assert attached["llamaindex"] is True
    (headers,) = attached["headers"]
    assert headers[protocol.HEADER_THREAD_ID].startswith("ask:")
    assert headers[protocol.HEADER_PARENT_IDS] == ""
