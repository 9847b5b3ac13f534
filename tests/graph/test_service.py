"""End to end against the real service (simulated engine) on 127.0.0.1: headers, the DAG in
the process table, spans through OTLP, program sessions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

import autellix_graph
from autellix_graph import protocol
from examples import chatbot, lats, map_reduce, react_bfcl
from examples._common import ExampleRun, RunContext, shape, shape_from_program
from tests.graph.test_handler import State, map_reduce_graph

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
def traced_service(service: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Instrumented against ``service``: spans by OTLP to its /v1/traces, sessions left open
    so the finished programs stay in the table for inspection."""
    monkeypatch.delenv(protocol.ENV_OTLP_ENDPOINT, raising=False)
    monkeypatch.delenv(protocol.ENV_DISABLED, raising=False)
    autellix_graph.instrument(base_url=service, sessions=False)
    try:
        yield service
    finally:
        autellix_graph.uninstrument()


def program(base_url: str, program_id: str) -> httpx.Response:
    return httpx.get(f"{base_url}/v1/programs/{program_id}", timeout=10)


@pytest.mark.parametrize(
    "example", [chatbot.run, react_bfcl.run, map_reduce.run, lats.run], ids=lambda f: f.__module__
)
def test_each_example_leaves_the_expected_dag_in_the_process_table(
    traced_service: str, example: Callable[[RunContext], ExampleRun]
) -> None:
    run = example(RunContext(traced_service, token_scale=0.1, seed=3))
    response = program(traced_service, run.program_id)
    assert response.status_code == 200
    detail = response.json()
    assert shape_from_program(detail) == run.expected
    assert detail["num_calls"] == sum(run.expected.values())


def test_nested_subgraphs_dag_in_the_process_table(traced_service: str) -> None:
    llm = autellix_graph.chat_openai(base_url=traced_service, max_tokens=4)
    from langgraph.graph import START, StateGraph

    def call(name: str) -> Callable[[State], dict[str, list[str]]]:
        def node(state: State) -> dict[str, list[str]]:
            return {"items": [str(llm.invoke(name).content)]}

        return node

    deepest = StateGraph(State)
    deepest.add_node("leaf", call("leaf"))
    deepest.add_edge(START, "leaf")
    middle = StateGraph(State)
    middle.add_node("before", call("before"))
    middle.add_node("deep", deepest.compile())
    middle.add_edge(START, "before")
    middle.add_edge("before", "deep")
    outer = StateGraph(State)
    outer.add_node("start", call("start"))
    outer.add_node("mid", middle.compile())
    outer.add_node("end", call("end"))
    outer.add_edge(START, "start")
    outer.add_edge("start", "mid")
    outer.add_edge("mid", "end")
    config: Any = {"metadata": {protocol.PROGRAM_ID_METADATA_KEY: "nested-1"}}
    outer.compile().invoke({"items": []}, config)
    autellix_graph.force_flush()
    detail = program(traced_service, "nested-1").json()
    assert shape_from_program(detail) == shape(
        ("start[1]#1", []),
        ("mid[1]/before[1]#1", ["start[1]#1"]),
        ("mid[1]/deep[1]/leaf[1]#1", ["mid[1]/before[1]#1"]),
        ("end[1]#1", ["mid[1]/deep[1]/leaf[1]#1"]),
    )
    threads = {t["thread_id"]: t.get("parent_thread_id") for t in detail["threads"]}
    leaf = next(t for t in threads if t.rsplit("|", 1)[-1].startswith("leaf:"))
    deep = leaf.rpartition("|")[0]
    assert threads[leaf] == deep
    assert threads[deep] == deep.rpartition("|")[0]


def test_spans_reach_the_service_over_otlp(traced_service: str) -> None:
    """Tool and node spans are placed in the program's DAG by the service's /v1/traces."""
    run = react_bfcl.run(RunContext(traced_service, token_scale=0.1, seed=1))
    assert autellix_graph.force_flush()
    detail = program(traced_service, run.program_id).json()
    kinds = {node["kind"] for node in detail["dag"]["nodes"]}
    assert {protocol.SPAN_KIND_LLM, protocol.SPAN_KIND_TOOL, protocol.SPAN_KIND_NODE} <= kinds
    tool_nodes = [n for n in detail["dag"]["nodes"] if n["kind"] == protocol.SPAN_KIND_TOOL]
    llm_ids = {c["call_id"] for c in detail["calls"]}
    edges = {(e["source"], e["target"]) for e in detail["dag"]["edges"]}
    for tool_node in tool_nodes:
        assert any(source in llm_ids for source, target in edges if target == tool_node["node_id"])
    assert detail["finished"]


def test_sessions_open_on_the_first_call_and_close_when_the_run_ends(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(protocol.ENV_OTLP_ENDPOINT, raising=False)
    seen_during_run: list[str] = []
    llm = autellix_graph.chat_openai(base_url=service, max_tokens=4)
    from langgraph.graph import START, StateGraph

    def first(state: State) -> dict[str, list[str]]:
        return {"items": [str(llm.invoke("hello").content)]}

    def second(state: State) -> dict[str, list[str]]:
        autellix_graph.force_flush()
        seen_during_run.append(program(service, "session-1").json()["state"])
        return {"items": [str(llm.invoke("again").content)]}

    builder = StateGraph(State)
    builder.add_node("first", first)
    builder.add_node("second", second)
    builder.add_edge(START, "first")
    builder.add_edge("first", "second")
    autellix_graph.instrument(base_url=service)
    try:
        config: Any = {"metadata": {protocol.PROGRAM_ID_METADATA_KEY: "session-1"}}
        builder.compile().invoke({"items": []}, config)
        assert autellix_graph.force_flush()
    finally:
        autellix_graph.uninstrument()
    assert seen_during_run == ["running"]
    # Ended: out of the live table, its row kept in the history.
    assert program(service, "session-1").json()["state"] == "finished"
    listed = httpx.get(f"{service}/v1/programs", timeout=10).json()["data"]
    assert "session-1" not in {p["program_id"] for p in listed}


def test_headers_name_the_call_and_its_parents(service: str) -> None:
    """What the service receives: every request tagged, parents pointing at earlier calls."""
    received: list[httpx.Headers] = []
    client = autellix_graph.http_client(
        event_hooks={"request": [lambda request: received.append(request.headers)]}
    )
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(
        model=autellix_graph._clients.served_model(f"{service}/v1"),
        base_url=f"{service}/v1",
        api_key="x",  # type: ignore[arg-type]
        http_client=client,
        max_tokens=4,
    )
    autellix_graph.instrument(sessions=False)
    try:
        for _ in range(2):
            llm.invoke("hi")
        map_reduce_graph(llm=llm).invoke({"items": []})
    finally:
        autellix_graph.uninstrument()
    assert len(received) == 2 + 7
    for headers in received:
        assert headers[protocol.HEADER_PROGRAM_ID]
        assert headers[protocol.HEADER_CALL_ID]
    call_ids = [h[protocol.HEADER_CALL_ID] for h in received]
    for index, headers in enumerate(received):
        parents = [p for p in headers[protocol.HEADER_PARENT_IDS].split(",") if p]
        assert set(parents) <= set(call_ids[:index])
    assert len({h[protocol.HEADER_PROGRAM_ID] for h in received[:2]}) == 2
    assert len({h[protocol.HEADER_PROGRAM_ID] for h in received[2:]}) == 1


def test_a_run_resumed_after_an_interrupt_keeps_its_program_and_attained_service(
    service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``interrupt()`` pauses the program; ``Command(resume=...)`` on the same thread_id
    continues it: the paused program stays in the table, and the resumed run's first call
    starts from the service the program had attained, not from 0."""
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import START, StateGraph
    from langgraph.types import Command, interrupt

    monkeypatch.delenv(protocol.ENV_OTLP_ENDPOINT, raising=False)
    llm = autellix_graph.chat_openai(base_url=service, max_tokens=4)
    while_resumed: list[dict[str, Any]] = []

    def ask(state: State) -> dict[str, list[str]]:
        llm.invoke("draft")
        answer = interrupt("approve?")
        assert autellix_graph.force_flush()
        while_resumed.append(program(service, "paused-1").json())
        llm.invoke(f"final {answer}")
        return {"items": [str(answer)]}

    builder = StateGraph(State)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    graph = builder.compile(checkpointer=InMemorySaver())
    config: Any = {
        "configurable": {"thread_id": "conversation-7"},
        "metadata": {protocol.PROGRAM_ID_METADATA_KEY: "paused-1"},
    }
    autellix_graph.instrument(base_url=service)
    try:
        assert "__interrupt__" in graph.invoke({"items": []}, config)
        assert autellix_graph.force_flush()
        paused = program(service, "paused-1").json()
        assert paused["state"] == "running"
        (draft,) = paused["calls"]
        assert draft["status"] == "finished" and draft["service"] > 0
        assert graph.invoke(Command(resume="yes"), config)["items"] == ["yes"]
        assert autellix_graph.force_flush()
    finally:
        autellix_graph.uninstrument()
    # LangGraph re-runs the node on resume: its first call is the draft again.
    (row,) = while_resumed
    calls = {c["call_id"]: c for c in row["calls"]}
    assert set(calls) > {draft["call_id"]} and len(calls) == 2
    (redraft,) = (c for c in calls.values() if c["call_id"] != draft["call_id"])
    assert redraft["priority"] == pytest.approx(draft["service"])
    assert row["service"] == pytest.approx(draft["service"] + redraft["service"])
    # The resumed run ended well: its session closed (the row stays in the table's history).
    assert program(service, "paused-1").json()["state"] == "finished"
