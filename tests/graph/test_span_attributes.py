"""What the spans tell tracing tools (Phoenix, Jaeger, OTel GenAI readers), on real LangGraph
runs with spans kept in memory: sessions, models, tokens, status, graph ids, opt-in content."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, StateGraph
from langgraph.types import Send
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import autellix_graph
from autellix_graph import AutellixCallbackHandler, Settings, protocol
from autellix_graph import _attributes as attr
from autellix_graph._tracing import PROJECT_NAME_RESOURCE_ATTRIBUTE, exporting_provider
from tests.graph._support import attrs, spans_of_kind
from tests.graph.test_handler import State

PROMPT = "plan a trip for user 4711"
CONTENT_KEYS = (attr.INPUT_VALUE, attr.OUTPUT_VALUE, attr.GEN_AI_INPUT_MESSAGES)
CONTENT_PREFIXES = (attr.LLM_INPUT_MESSAGES, attr.LLM_OUTPUT_MESSAGES, "gen_ai.tool.call.")


@tool
def lookup(topic: str) -> str:
    """Notes on a topic."""
    return f"notes on {topic}"


def fan_out_graph(llm: Any) -> Any:
    """plan -> Send(research) x 3, each calling the ``lookup`` tool then the model."""

    def plan(state: State) -> dict[str, list[str]]:
        return {"items": [str(llm.invoke(PROMPT).content)]}

    def fan_out(state: State) -> list[Send]:
        return [Send("research", {"items": [f"topic {i}"]}) for i in range(3)]

    def research(state: State) -> dict[str, list[str]]:
        notes = lookup.invoke({"topic": state["items"][0]})
        return {"items": [str(llm.invoke(f"summarise {notes}").content)]}

    graph = StateGraph(State)
    graph.add_node("plan", plan)
    graph.add_node("research", research)
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", fan_out, ["research"])
    return graph.compile(checkpointer=InMemorySaver())


def fake_llm() -> FakeListChatModel:
    return FakeListChatModel(responses=[f"reply {i}" for i in range(100)])


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (
        protocol.ENV_BACKEND_URL,
        protocol.ENV_OTLP_ENDPOINT,
        protocol.ENV_DISABLED,
        "AUTELLIX_CAPTURE_CONTENT",
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    ):
        monkeypatch.delenv(name, raising=False)
    yield


def run(
    provider: TracerProvider, llm: Any, thread_id: str = "conversation-7", **settings: Any
) -> AutellixCallbackHandler:
    handler = AutellixCallbackHandler(tracer_provider=provider, **settings)
    config: Any = {"callbacks": [handler], "configurable": {"thread_id": thread_id}}
    fan_out_graph(llm).invoke({"items": ["go"]}, config)
    return handler


def content_keys(spans: Iterable[ReadableSpan]) -> set[str]:
    return {
        key
        for span in spans
        for key in attrs(span)
        if key in CONTENT_KEYS or key.startswith(CONTENT_PREFIXES)
    }


def test_no_content_by_default(
    provider: TracerProvider, exporter: InMemorySpanExporter, no_env: None
) -> None:
    run(provider, fake_llm())
    spans = exporter.get_finished_spans()
    assert len(spans) == 1 + 4 + 4 + 3  # program, tasks, LLM calls, tools
    assert content_keys(spans) == set()
    values = json.dumps([dict(attrs(s)) for s in spans])
    assert "4711" not in values and "notes on" not in values and "reply" not in values


@pytest.mark.parametrize(
    "switch",
    [
        {"capture_content": True},
        {"env": ("AUTELLIX_CAPTURE_CONTENT", "1")},
        {"env": ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")},
    ],
    ids=["argument", "autellix-env", "otel-env"],
)
def test_content_when_opted_in(
    provider: TracerProvider,
    exporter: InMemorySpanExporter,
    no_env: None,
    monkeypatch: pytest.MonkeyPatch,
    switch: dict[str, Any],
) -> None:
    if "env" in switch:
        monkeypatch.setenv(*switch.pop("env"))
    run(provider, fake_llm(), **switch)
    spans = exporter.get_finished_spans()
    plan = min(spans_of_kind(spans, protocol.SPAN_KIND_LLM), key=lambda s: s.start_time or 0)
    a = attrs(plan)
    assert a["llm.input_messages.0.message.role"] == "user"
    assert a["llm.input_messages.0.message.content"] == PROMPT
    assert a["llm.output_messages.0.message.role"] == "assistant"
    assert a["llm.output_messages.0.message.content"] == "reply 0"
    assert json.loads(str(a[attr.INPUT_VALUE])) == {
        "messages": [{"role": "user", "content": PROMPT}]
    }
    assert a[attr.OUTPUT_VALUE] == "reply 0"
    tools = spans_of_kind(spans, protocol.SPAN_KIND_TOOL)
    assert sorted(json.loads(str(attrs(t)[attr.INPUT_VALUE]))["topic"] for t in tools) == [
        "topic 0",
        "topic 1",
        "topic 2",
    ]
    assert all(str(attrs(t)[attr.OUTPUT_VALUE]).startswith("notes on topic") for t in tools)
    (root,) = spans_of_kind(spans, protocol.SPAN_KIND_PROGRAM)
    assert json.loads(str(attrs(root)[attr.INPUT_VALUE])) == {"items": ["go"]}
    assert len(json.loads(str(attrs(root)[attr.OUTPUT_VALUE]))["items"]) == 5


def test_a_long_history_keeps_the_span_ids_and_its_latest_messages(
    provider: TracerProvider, exporter: InMemorySpanExporter, no_env: None
) -> None:
    """The SDK keeps 128 attributes a span and evicts the oldest: flattening 200 messages
    would push out the program and call ids the service reads."""
    history = [("human" if i % 2 == 0 else "ai", f"message {i}") for i in range(200)]
    handler = AutellixCallbackHandler(tracer_provider=provider, capture_content=True)
    fake_llm().invoke(history, {"callbacks": [handler]})
    (span,) = spans_of_kind(exporter.get_finished_spans(), protocol.SPAN_KIND_LLM)
    assert span.dropped_attributes == 0
    a = attrs(span)
    assert a[protocol.ATTR_SPAN_KIND] == protocol.SPAN_KIND_LLM and a[protocol.ATTR_CALL_ID]
    flat = sorted(
        (int(k.split(".")[2]), str(v))
        for k, v in a.items()
        if k.startswith(attr.LLM_INPUT_MESSAGES) and k.endswith(".content")
    )
    assert flat == [(i, f"message {200 - len(flat) + i}") for i in range(len(flat))]
    assert len(flat) == attr.MAX_INPUT_MESSAGE_ATTRIBUTES // 2
    assert len(json.loads(str(a[attr.GEN_AI_INPUT_MESSAGES]))) == 200


def test_session_is_the_conversation_and_the_program_keeps_its_id(
    provider: TracerProvider, exporter: InMemorySpanExporter, no_env: None
) -> None:
    llm = fake_llm()
    run(provider, llm, thread_id="conversation-7")
    run(provider, llm, thread_id="conversation-7")
    spans = exporter.get_finished_spans()
    roots = spans_of_kind(spans, protocol.SPAN_KIND_PROGRAM)
    program_ids = {attrs(r)[protocol.ATTR_PROGRAM_ID] for r in roots}
    assert len(program_ids) == 2  # two turns, two programs...
    for span in spans:  # ...one session
        assert attrs(span)[protocol.OPENINFERENCE_SESSION_ID] == "conversation-7"
        assert attrs(span)[protocol.GEN_AI_CONVERSATION_ID] == "conversation-7"
        assert attrs(span)[protocol.ATTR_PROGRAM_ID] in program_ids


def test_session_id_from_run_metadata(
    provider: TracerProvider, exporter: InMemorySpanExporter, no_env: None
) -> None:
    handler = AutellixCallbackHandler(tracer_provider=provider)
    config: Any = {"callbacks": [handler], "metadata": {"session_id": "chat-42"}}
    fake_llm().invoke("hi", config)
    spans = exporter.get_finished_spans()
    assert len(spans) == 2  # the call is its own program
    for span in spans:
        assert attrs(span)[protocol.OPENINFERENCE_SESSION_ID] == "chat-42"
        assert attrs(span)[protocol.ATTR_PROGRAM_ID] != "chat-42"


def test_graph_node_ids_form_one_tree_rooted_at_the_program(
    provider: TracerProvider, exporter: InMemorySpanExporter, no_env: None
) -> None:
    run(provider, fake_llm())
    spans = exporter.get_finished_spans()
    ids = {attrs(s)[protocol.OPENINFERENCE_GRAPH_NODE_ID]: s for s in spans}
    assert len(ids) == len(spans)
    for span in spans:
        assert attrs(span)[attr.GRAPH_NODE_NAME]
        parent = attrs(span).get(protocol.OPENINFERENCE_GRAPH_NODE_PARENT_ID)
        if attrs(span)[protocol.ATTR_SPAN_KIND] == protocol.SPAN_KIND_PROGRAM:
            assert parent is None
            continue
        assert parent in ids, span.name
        # The graph parent is the span's own parent span: the graph and the trace agree.
        assert span.parent is not None
        assert ids[parent].context.span_id == span.parent.span_id


def test_successful_spans_are_ok_and_a_failed_tool_is_error(
    provider: TracerProvider, exporter: InMemorySpanExporter, no_env: None
) -> None:
    run(provider, fake_llm())
    assert {s.status.status_code for s in exporter.get_finished_spans()} == {StatusCode.OK}
    exporter.clear()

    @tool
    def broken(topic: str) -> str:
        """Always fails."""
        raise RuntimeError("secret detail")

    handler = AutellixCallbackHandler(tracer_provider=provider)
    graph = StateGraph(State)
    graph.add_node("work", lambda state: {"items": [broken.invoke({"topic": "x"})]})
    graph.add_edge(START, "work")
    with pytest.raises(RuntimeError):
        graph.compile().invoke({"items": []}, {"callbacks": [handler]})
    spans = exporter.get_finished_spans()
    statuses = {attrs(s)[protocol.ATTR_SPAN_KIND]: s.status for s in spans}
    assert {k: s.status_code for k, s in statuses.items()} == {
        protocol.SPAN_KIND_TOOL: StatusCode.ERROR,
        protocol.SPAN_KIND_NODE: StatusCode.ERROR,
        protocol.SPAN_KIND_PROGRAM: StatusCode.ERROR,
    }
    assert all("secret" not in (s.description or "") for s in statuses.values())


def test_model_and_provider_fall_back_to_the_client_class(
    provider: TracerProvider, exporter: InMemorySpanExporter, no_env: None
) -> None:
    fake_llm().invoke("hi", {"callbacks": [AutellixCallbackHandler(tracer_provider=provider)]})
    (span,) = spans_of_kind(exporter.get_finished_spans(), protocol.SPAN_KIND_LLM)
    assert span.name == "chat FakeListChatModel"
    a = attrs(span)
    assert a[protocol.GEN_AI_REQUEST_MODEL] == a[attr.LLM_MODEL_NAME] == "FakeListChatModel"
    assert a[attr.GEN_AI_PROVIDER_NAME] == a[attr.LLM_PROVIDER] == "fakelistchatmodel"


@pytest.mark.timeout(120)
def test_llm_span_through_the_service_has_model_usage_and_no_secrets(
    service: str, provider: TracerProvider, exporter: InMemorySpanExporter, no_env: None
) -> None:
    llm = autellix_graph.chat_openai(
        base_url=service,
        api_key="sk-do-not-leak",
        max_tokens=5,
        temperature=0.5,
        default_headers={"X-Api-Token": "tok-do-not-leak"},
    )
    handler = AutellixCallbackHandler(tracer_provider=provider, capture_content=True)
    llm.invoke("hello there", {"callbacks": [handler]})
    (span,) = spans_of_kind(exporter.get_finished_spans(), protocol.SPAN_KIND_LLM)
    a = attrs(span)
    assert span.name == "chat sim"
    assert a[attr.LLM_MODEL_NAME] == a[protocol.GEN_AI_REQUEST_MODEL] == "sim"
    assert a[attr.GEN_AI_RESPONSE_MODEL] == "sim"
    assert a[attr.LLM_PROVIDER] == a[attr.LLM_SYSTEM] == a[attr.GEN_AI_PROVIDER_NAME] == "openai"
    params = json.loads(str(a[attr.LLM_INVOCATION_PARAMETERS]))
    assert params["temperature"] == 0.5 and params["model"] == "sim"
    # The service's measured usage: 5 output tokens asked for, input counted by its tokenizer.
    assert a[attr.LLM_TOKEN_COUNT_COMPLETION] == a[protocol.GEN_AI_USAGE_OUTPUT_TOKENS] == 5
    prompt_tokens = a[attr.LLM_TOKEN_COUNT_PROMPT]
    assert isinstance(prompt_tokens, int) and prompt_tokens > 0
    assert a[protocol.GEN_AI_USAGE_INPUT_TOKENS] == prompt_tokens
    assert a[attr.LLM_TOKEN_COUNT_TOTAL] == prompt_tokens + 5
    everything = json.dumps({k: v for k, v in a.items()}, default=list)
    assert "do-not-leak" not in everything


@pytest.mark.timeout(120)
def test_streamed_call_through_the_service_has_token_counts(
    service: str, provider: TracerProvider, exporter: InMemorySpanExporter, no_env: None
) -> None:
    llm = autellix_graph.chat_openai(base_url=service, max_tokens=3)
    handler = AutellixCallbackHandler(tracer_provider=provider)
    assert "".join(str(c.content) for c in llm.stream("hello", {"callbacks": [handler]}))
    (span,) = spans_of_kind(exporter.get_finished_spans(), protocol.SPAN_KIND_LLM)
    assert attrs(span)[attr.LLM_TOKEN_COUNT_COMPLETION] == 3
    assert (
        attrs(span)[protocol.GEN_AI_USAGE_INPUT_TOKENS] == attrs(span)[attr.LLM_TOKEN_COUNT_PROMPT]
    )


def test_secret_parameters_are_removed() -> None:
    params: Mapping[str, Any] = {
        "model": "m",
        "max_tokens": 3,
        "api_key": "k",
        "openai_api_key": {"lc": 1, "type": "secret", "id": ["OPENAI_API_KEY"]},
        "accessToken": "t",
        "default_headers": {"Authorization": "Bearer x"},
        "extra_body": {"client_secret": "s", "top_k": 2},
        "http_client": object(),
        "_type": "openai-chat",
    }
    assert attr.without_secrets(params) == {
        "model": "m",
        "max_tokens": 3,
        "extra_body": {"top_k": 2},
    }


def test_settings_from_environment() -> None:
    assert Settings.from_env({}).capture_content is False
    assert Settings.from_env({"AUTELLIX_CAPTURE_CONTENT": "true"}).capture_content is True
    otel = {"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT": "true"}
    assert Settings.from_env(otel).capture_content is True
    # Ours wins over OpenTelemetry's, and an argument over both.
    assert Settings.from_env({**otel, "AUTELLIX_CAPTURE_CONTENT": "0"}).capture_content is False
    assert Settings.from_env(otel, capture_content=False).capture_content is False
    assert Settings.from_env({"PHOENIX_PROJECT_NAME": "p"}).project_name == "p"
    both = {"PHOENIX_PROJECT_NAME": "p", "AUTELLIX_PROJECT_NAME": "q"}
    assert Settings.from_env(both).project_name == "q"


def test_exporting_provider_names_the_project() -> None:
    provider = exporting_provider("http://127.0.0.1:9/v1/traces", None, "my-agents")
    assert provider is not None
    try:
        resource = provider.resource.attributes
        assert resource[PROJECT_NAME_RESOURCE_ATTRIBUTE] == "my-agents"
        assert resource["service.name"] == "autellix-graph"
    finally:
        provider.shutdown()
