"""The middleware on real LangGraph runs, spans kept in memory (no service)."""

from __future__ import annotations

import asyncio
import operator
from typing import Annotated, Any, TypedDict

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.types import Command, RetryPolicy, Send, interrupt
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import autellix_graph
from autellix_graph import AutellixCallbackHandler, protocol
from examples._common import chain
from tests.graph._support import Shape, attrs, shape, shape_from_spans, spans_of_kind


class State(TypedDict):
    items: Annotated[list[str], operator.add]


class Chat(TypedDict):
    messages: Annotated[list[Any], operator.add]


def _llm() -> FakeListChatModel:
    return FakeListChatModel(responses=[f"r{i}" for i in range(1000)])


def map_reduce_graph(width: int = 3, calls_per_map: int = 1, llm: Any = None) -> Any:
    """plan -> Send(map) x width -> nested subgraph (two parallel nodes) -> reduce."""
    llm = llm or _llm()

    def plan(state: State) -> dict[str, list[str]]:
        return {"items": [str(llm.invoke("plan").content)]}

    def fan_out(state: State) -> list[Send]:
        return [Send("map", {"items": [str(i)]}) for i in range(width)]

    def map_(state: State) -> dict[str, list[str]]:
        out = [str(llm.invoke(f"map {state['items']}").content) for _ in range(calls_per_map)]
        return {"items": out}

    def left(state: State) -> dict[str, list[str]]:
        return {"items": [str(llm.invoke("left").content)]}

    def right(state: State) -> dict[str, list[str]]:
        return {"items": [str(llm.invoke("right").content)]}

    def reduce(state: State) -> dict[str, list[str]]:
        return {"items": [str(llm.invoke("reduce").content)]}

    inner = StateGraph(State)
    inner.add_node("left", left)
    inner.add_node("right", right)
    inner.add_edge(START, "left")
    inner.add_edge(START, "right")
    outer = StateGraph(State)
    outer.add_node("plan", plan)
    outer.add_node("map", map_)
    outer.add_node("review", inner.compile())
    outer.add_node("reduce", reduce)
    outer.add_edge(START, "plan")
    outer.add_conditional_edges("plan", fan_out, ["map"])
    outer.add_edge("map", "review")
    outer.add_edge("review", "reduce")
    outer.add_edge("reduce", END)
    return outer.compile()


def expected_map_reduce(width: int = 3, calls_per_map: int = 1) -> Shape:
    """Every map task chains its calls after the plan; the subgraph's two nodes join the last
    call of every map task, and the reduce joins both."""
    maps = [f"map[{k}]" for k in range(1, width + 1)]
    last = [f"{m}#{calls_per_map}" for m in maps]
    return shape(
        ("plan[1]#1", []),
        *[item for m in maps for item in chain(m, calls_per_map, ["plan[1]#1"])],
        ("review[1]/left[1]#1", last),
        ("review[1]/right[1]#1", last),
        ("reduce[1]#1", ["review[1]/left[1]#1", "review[1]/right[1]#1"]),
    )


EXPECTED = expected_map_reduce()


def test_sync_graph_with_send_and_subgraph_builds_the_dag(
    instrumented: InMemorySpanExporter,
) -> None:
    map_reduce_graph().invoke({"items": []})
    spans = instrumented.get_finished_spans()
    assert shape_from_spans(spans) == EXPECTED
    (program,) = spans_of_kind(spans, protocol.SPAN_KIND_PROGRAM)
    program_id = attrs(program)[protocol.ATTR_PROGRAM_ID]
    for span in spans:
        assert attrs(span)[protocol.OPENINFERENCE_SESSION_ID] == program_id
        assert attrs(span)[protocol.GEN_AI_CONVERSATION_ID] == program_id
        assert span.context.trace_id == program.context.trace_id
    (left,) = [
        s
        for s in spans_of_kind(spans, protocol.SPAN_KIND_NODE)
        if attrs(s)[protocol.ATTR_NODE_NAME] == "left"
    ]
    (review,) = [
        s
        for s in spans_of_kind(spans, protocol.SPAN_KIND_NODE)
        if attrs(s)[protocol.ATTR_NODE_NAME] == "review"
    ]
    assert attrs(left)[protocol.ATTR_PARENT_THREAD_ID] == attrs(review)[protocol.ATTR_THREAD_ID]
    assert left.parent is not None and left.parent.span_id == review.context.span_id
    llm = spans_of_kind(spans, protocol.SPAN_KIND_LLM)[0]
    assert attrs(llm)[protocol.OPENINFERENCE_SPAN_KIND] == "LLM"
    assert attrs(llm)[protocol.GEN_AI_OPERATION_NAME] == "chat"


@pytest.mark.parametrize("mode", ["stream", "ainvoke", "astream"])
def test_stream_and_async_runs_build_the_same_dag(
    instrumented: InMemorySpanExporter, mode: str
) -> None:
    graph = map_reduce_graph()
    if mode == "stream":
        list(graph.stream({"items": []}))
    elif mode == "ainvoke":
        asyncio.run(graph.ainvoke({"items": []}))
    else:

        async def consume() -> None:
            async for _ in graph.astream({"items": []}, stream_mode="updates"):
                pass

        asyncio.run(consume())
    assert shape_from_spans(instrumented.get_finished_spans()) == EXPECTED


def test_results_are_the_same_with_and_without_instrumentation(
    provider: TracerProvider,
) -> None:
    plain = map_reduce_graph().invoke({"items": []})
    autellix_graph.instrument(tracer_provider=provider)
    try:
        traced = map_reduce_graph().invoke({"items": []})
    finally:
        autellix_graph.uninstrument()
    assert sorted(traced["items"]) == sorted(plain["items"])


def test_parallel_branches_on_the_thread_pool_are_traced_without_mixing(
    instrumented: InMemorySpanExporter,
) -> None:
    width, calls = 24, 5
    map_reduce_graph(width, calls).invoke({"items": []})
    got = shape_from_spans(instrumented.get_finished_spans())
    assert got == expected_map_reduce(width, calls)


def test_a_failing_node_fails_the_app_not_the_middleware(
    instrumented: InMemorySpanExporter,
) -> None:
    def broken(state: State) -> dict[str, list[str]]:
        raise ValueError("boom")

    builder = StateGraph(State)
    builder.add_node("broken", broken)
    builder.add_edge(START, "broken")
    with pytest.raises(ValueError, match="boom"):
        builder.compile().invoke({"items": []})
    spans = instrumented.get_finished_spans()
    (program,) = spans_of_kind(spans, protocol.SPAN_KIND_PROGRAM)
    assert attrs(program)[protocol.ATTR_ERROR_KIND] == "ValueError"
    assert "boom" not in str(dict(attrs(program)))
    instrumented.clear()
    map_reduce_graph().invoke({"items": []})
    assert shape_from_spans(instrumented.get_finished_spans()) == EXPECTED


class _BrokenTracerProvider(TracerProvider):
    def get_tracer(self, *args: Any, **kwargs: Any) -> Any:
        class Tracer:
            def start_span(self, *a: Any, **k: Any) -> Any:
                raise RuntimeError("tracing bug")

        return Tracer()


def test_hooks_that_raise_never_reach_the_app() -> None:
    plain = map_reduce_graph().invoke({"items": []})
    autellix_graph.instrument(tracer_provider=_BrokenTracerProvider())
    try:
        result = map_reduce_graph().invoke({"items": []})
    finally:
        autellix_graph.uninstrument()
    assert sorted(result["items"]) == sorted(plain["items"])


def test_retries_keep_one_thread(instrumented: InMemorySpanExporter) -> None:
    llm = _llm()
    attempts: list[int] = []

    def flaky(state: State) -> dict[str, list[str]]:
        llm.invoke("try")
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("transient")
        return {"items": ["ok"]}

    builder = StateGraph(State)
    builder.add_node("flaky", flaky, retry_policy=RetryPolicy(initial_interval=0.01, jitter=False))
    builder.add_edge(START, "flaky")
    builder.compile().invoke({"items": []})
    spans = instrumented.get_finished_spans()
    assert shape_from_spans(spans) == shape(*chain("flaky[1]", 3, []))
    assert len(spans_of_kind(spans, protocol.SPAN_KIND_NODE)) == 3


def test_tool_calls_are_nodes(instrumented: InMemorySpanExporter) -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    llm = _llm()

    def agent(state: Chat) -> dict[str, list[Any]]:
        from langchain_core.messages import AIMessage

        llm.invoke("think")
        if len(state["messages"]) > 1:
            return {"messages": [AIMessage("done")]}
        calls = [{"name": "add", "args": {"a": 1, "b": i}, "id": f"t{i}"} for i in range(2)]
        return {"messages": [AIMessage("", tool_calls=calls)]}

    def route(state: Chat) -> str:
        return "tools" if getattr(state["messages"][-1], "tool_calls", None) else END

    builder = StateGraph(Chat)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([add]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route, ["tools", END])
    builder.add_edge("tools", "agent")
    builder.compile().invoke({"messages": [("user", "add")]})
    spans = instrumented.get_finished_spans()
    tools = spans_of_kind(spans, protocol.SPAN_KIND_TOOL)
    llms = sorted(spans_of_kind(spans, protocol.SPAN_KIND_LLM), key=lambda s: s.start_time or 0)
    first, second = (attrs(s)[protocol.ATTR_CALL_ID] for s in llms)
    assert len(tools) == 2
    assert all(list(attrs(t)[protocol.ATTR_PARENT_IDS]) == [first] for t in tools)
    assert all(attrs(t)[protocol.GEN_AI_TOOL_NAME] == "add" for t in tools)
    tool_ids = {attrs(t)[protocol.ATTR_NODE_ID] for t in tools}
    assert set(attrs(llms[1])[protocol.ATTR_PARENT_IDS]) == tool_ids
    assert list(attrs(llms[1])[protocol.ATTR_LLM_PARENT_IDS]) == [first]
    assert second != first


def test_interrupt_and_resume_continue_one_program(instrumented: InMemorySpanExporter) -> None:
    llm = _llm()

    def ask(state: State) -> dict[str, list[str]]:
        llm.invoke("draft")
        answer = interrupt("approve?")
        llm.invoke(f"final {answer}")
        return {"items": [str(answer)]}

    builder = StateGraph(State)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    graph = builder.compile(checkpointer=InMemorySaver())
    config: Any = {"configurable": {"thread_id": "conversation-1"}}
    first = graph.invoke({"items": []}, config)
    assert "__interrupt__" in first
    assert graph.invoke(Command(resume="yes"), config)["items"] == ["yes"]
    spans = instrumented.get_finished_spans()
    programs = {attrs(s)[protocol.ATTR_PROGRAM_ID] for s in spans}
    assert len(programs) == 1
    (pause,) = spans_of_kind(spans, protocol.SPAN_KIND_INTERRUPT)
    assert shape_from_spans(spans) == shape(*chain("ask[1]", 3, []))
    llms = sorted(spans_of_kind(spans, protocol.SPAN_KIND_LLM), key=lambda s: s.start_time or 0)
    assert list(attrs(pause)[protocol.ATTR_PARENT_IDS]) == [attrs(llms[0])[protocol.ATTR_CALL_ID]]
    assert list(attrs(llms[1])[protocol.ATTR_PARENT_IDS]) == [attrs(pause)[protocol.ATTR_NODE_ID]]


def test_explicit_handler_and_global_one_do_not_trace_twice(
    instrumented: InMemorySpanExporter, provider: TracerProvider
) -> None:
    handler = AutellixCallbackHandler(tracer_provider=provider)
    map_reduce_graph().invoke({"items": []}, config={"callbacks": [handler]})
    spans = instrumented.get_finished_spans()
    assert len(spans_of_kind(spans, protocol.SPAN_KIND_PROGRAM)) == 1
    assert shape_from_spans(spans) == EXPECTED


def test_explicit_handler_alone(exporter: InMemorySpanExporter, provider: TracerProvider) -> None:
    handler = AutellixCallbackHandler(tracer_provider=provider, sessions=False)
    map_reduce_graph().invoke({"items": []}, config={"callbacks": [handler]})
    assert shape_from_spans(exporter.get_finished_spans()) == EXPECTED
    exporter.clear()
    map_reduce_graph().invoke({"items": []})
    assert exporter.get_finished_spans() == ()


def test_program_id_from_config_and_uninstrument_and_kill_switch(
    exporter: InMemorySpanExporter, provider: TracerProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    autellix_graph.instrument(tracer_provider=provider)
    autellix_graph.instrument(tracer_provider=provider)  # idempotent
    config: Any = {"metadata": {protocol.PROGRAM_ID_METADATA_KEY: "my-program"}}
    map_reduce_graph().invoke({"items": []}, config)
    autellix_graph.uninstrument()
    autellix_graph.uninstrument()
    programs = {attrs(s)[protocol.ATTR_PROGRAM_ID] for s in exporter.get_finished_spans()}
    assert programs == {"my-program"}
    exporter.clear()
    map_reduce_graph().invoke({"items": []})
    monkeypatch.setenv(protocol.ENV_DISABLED, "1")
    autellix_graph.instrument(tracer_provider=provider)
    map_reduce_graph().invoke({"items": []})
    assert exporter.get_finished_spans() == ()
    assert not autellix_graph.AutellixInstrumentor().is_instrumented


def test_an_inactive_handler_asks_langchain_for_no_events(provider: TracerProvider) -> None:
    """langchain-core attaches the global handler to every run once ``instrument()`` has been
    called, also after ``uninstrument()``: it then asks for no event, so untraced runs do not
    pay for its hooks. A disabled explicit handler does the same."""
    ignores = ("ignore_chain", "ignore_llm", "ignore_chat_model", "ignore_agent")
    handler = autellix_graph.AutellixInstrumentor().handler
    autellix_graph.instrument(tracer_provider=provider)
    try:
        assert not any(getattr(handler, name) for name in ignores)
    finally:
        autellix_graph.uninstrument()
    assert all(getattr(handler, name) for name in ignores)
    disabled = AutellixCallbackHandler(settings=autellix_graph.Settings(disabled=True))
    assert all(getattr(disabled, name) for name in ignores)
    assert not any(getattr(AutellixCallbackHandler(sessions=False), name) for name in ignores)
