"""Spans as a real Arize Phoenix sees them: a LangGraph fan-out run against the real service
(simulated engine), exported by OTLP/HTTP to Phoenix on loopback, read back through Phoenix's
REST API (``/v1/projects/{project}/spans`` and ``/sessions``)."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import autellix_graph
from autellix_graph import AutellixCallbackHandler
from tests.graph._support import running_service
from tests.graph.test_span_attributes import fan_out_graph
from tests.interop.conftest import Phoenix
from tests.ui.conftest import OUTPUT_DIR

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

PLAIN = "autellix-interop"
"""Project of two turns of one conversation, content not captured."""
CONTENT = "autellix-interop-content"
"""Project of one run with content captured."""
CONVERSATION = "conversation-1"
"""The plain project's conversation (Phoenix keys sessions by id across projects, so the
content project's run uses another)."""
SPANS_PER_RUN = 1 + 4 + 4 + 3
"""The program, its 4 tasks (plan, 3 research), 4 LLM calls and 3 tool calls."""
MAX_TOKENS = 4
Span = dict[str, Any]


@pytest.fixture(scope="module")
def exported(phoenix: Phoenix) -> dict[str, list[Span]]:
    """Project -> the spans Phoenix stored for it."""
    with running_service() as service:
        llm = autellix_graph.chat_openai(base_url=service, max_tokens=MAX_TOKENS)
        app = fan_out_graph(llm)
        runs = ((PLAIN, False, 2, CONVERSATION), (CONTENT, True, 1, "conversation-2"))
        for project, capture, turns, conversation in runs:
            handler = AutellixCallbackHandler(
                otlp_endpoint=phoenix.otlp_endpoint,
                project_name=project,
                capture_content=capture,
                sessions=False,
            )
            try:
                for turn in range(turns):
                    config: Any = {
                        "callbacks": [handler],
                        "configurable": {"thread_id": conversation},
                    }
                    app.invoke({"items": [f"turn {turn}"]}, config)
            finally:
                handler.close()
    return {
        PLAIN: stored_spans(phoenix, PLAIN, 2 * SPANS_PER_RUN),
        CONTENT: stored_spans(phoenix, CONTENT, SPANS_PER_RUN),
    }


def stored_spans(phoenix: Phoenix, project: str, expected: int) -> list[Span]:
    """The project's spans once Phoenix has stored ``expected`` of them (it inserts in bulk)."""
    deadline = time.monotonic() + 60
    spans: list[Span] = []
    while time.monotonic() < deadline:
        response = httpx.get(f"{phoenix.url}/v1/projects/{project}/spans?limit=1000", timeout=10)
        if response.status_code == 200:
            spans = response.json()["data"]
            if len(spans) >= expected:
                assert len(spans) == expected
                return spans
        time.sleep(0.5)
    pytest.fail(f"Phoenix stored {len(spans)} of {expected} spans in project {project}")


def by_trace(spans: list[Span]) -> dict[str, list[Span]]:
    traces: dict[str, list[Span]] = {}
    for span in spans:
        traces.setdefault(span["context"]["trace_id"], []).append(span)
    return traces


def of_kind(spans: list[Span], kind: str) -> list[Span]:
    return [s for s in spans if s["span_kind"] == kind]


def is_content(key: str) -> bool:
    return key in ("input.value", "output.value") or key.startswith(
        ("llm.input_messages", "llm.output_messages", "gen_ai.input", "gen_ai.output.messages")
    )


def listening_addresses(pid: int) -> Iterator[tuple[str, int]]:
    """(hex address, port) of every TCP socket ``pid`` listens on (Linux ``/proc``)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                address, port = fields[1].split(":")
                if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                    yield address, int(port, 16)


LOOPBACK = {
    "0100007F",  # 127.0.0.1
    "0000000000000000FFFF00000100007F",  # ::ffff:127.0.0.1
    "00000000000000000000000001000000",  # ::1
}


def test_phoenix_listens_on_loopback_only(phoenix: Phoenix) -> None:
    listening = set(listening_addresses(phoenix.pid))
    ports = {port for _, port in listening}
    assert {int(phoenix.url.rsplit(":", 1)[1]), phoenix.grpc_port} <= ports
    assert {address for address, _ in listening} <= LOOPBACK, listening


def test_spans_land_in_the_named_projects(
    phoenix: Phoenix, exported: dict[str, list[Span]]
) -> None:
    names = {p["name"] for p in httpx.get(f"{phoenix.url}/v1/projects", timeout=10).json()["data"]}
    assert {PLAIN, CONTENT} <= names
    default = httpx.get(f"{phoenix.url}/v1/projects/default/spans", timeout=10)
    assert default.status_code == 404 or default.json()["data"] == []


def test_the_fan_out_nests_under_one_agent_root(exported: dict[str, list[Span]]) -> None:
    traces = by_trace(exported[PLAIN])
    assert len(traces) == 2
    for spans in traces.values():
        assert {s["status_code"] for s in spans} == {"OK"}
        by_id = {s["context"]["span_id"]: s for s in spans}
        (root,) = [s for s in spans if s["parent_id"] is None]
        assert root["span_kind"] == "AGENT"
        tasks = of_kind(spans, "CHAIN")
        assert all(t["parent_id"] == root["context"]["span_id"] for t in tasks)
        assert sorted(t["name"] for t in tasks) == ["plan", "research", "research", "research"]
        for llm in of_kind(spans, "LLM"):
            assert by_id[llm["parent_id"]]["span_kind"] == "CHAIN"
        for tool in of_kind(spans, "TOOL"):
            assert by_id[tool["parent_id"]]["name"] == "research"
        research = {t["context"]["span_id"] for t in tasks if t["name"] == "research"}
        assert {t["parent_id"] for t in of_kind(spans, "TOOL")} == research


def test_two_turns_of_a_conversation_are_one_session(
    phoenix: Phoenix, exported: dict[str, list[Span]]
) -> None:
    response = httpx.get(f"{phoenix.url}/v1/projects/{PLAIN}/sessions", timeout=10)
    (session,) = response.json()["data"]
    assert session["session_id"] == CONVERSATION
    traces = by_trace(exported[PLAIN])
    assert {t["trace_id"] for t in session["traces"]} == set(traces)
    programs = {
        s["attributes"]["autellix.program.id"] for s in exported[PLAIN] if s["span_kind"] == "AGENT"
    }
    assert len(programs) == 2  # each turn is its own program, in one session
    # Phoenix sums the token counts it read from the LLM spans.
    assert session["token_count_completion"] == 2 * 4 * MAX_TOKENS
    assert session["token_count_prompt"] > 0


def test_llm_spans_carry_model_provider_and_the_service_token_counts(
    exported: dict[str, list[Span]],
) -> None:
    llms = of_kind(exported[PLAIN], "LLM")
    assert len(llms) == 8
    for span in llms:
        attributes = span["attributes"]
        assert span["name"] == "chat sim"
        assert attributes["llm.model_name"] == attributes["gen_ai.request.model"] == "sim"
        assert attributes["llm.provider"] == attributes["gen_ai.provider.name"] == "openai"
        assert attributes["llm.token_count.completion"] == MAX_TOKENS
        assert attributes["gen_ai.usage.output_tokens"] == MAX_TOKENS
        prompt = attributes["llm.token_count.prompt"]
        assert prompt > 0 and attributes["llm.token_count.total"] == prompt + MAX_TOKENS
    tools = of_kind(exported[PLAIN], "TOOL")
    assert {t["attributes"]["tool.name"] for t in tools} == {"lookup"}


def test_content_only_when_opted_in(exported: dict[str, list[Span]]) -> None:
    for span in exported[PLAIN]:
        content = {k: v for k, v in span["attributes"].items() if is_content(k)}
        # Phoenix derives an LLM span's output.value from gen_ai.response.model; nothing else.
        assert content in ({}, {"output.value": '{"model": "sim"}'}), span["name"]
    spans = exported[CONTENT]
    (plan,) = [
        s for s in of_kind(spans, "LLM") if s["attributes"]["autellix.thread.id"][:5] == "plan:"
    ]
    assert plan["attributes"]["llm.input_messages.0.message.role"] == "user"
    assert (
        plan["attributes"]["llm.output_messages.0.message.content"]
        == plan["attributes"]["output.value"]
    )
    tools = of_kind(spans, "TOOL")
    assert sorted(t["attributes"]["input.value"] for t in tools) == [
        '{"topic":"topic 0"}',
        '{"topic":"topic 1"}',
        '{"topic":"topic 2"}',
    ]
    (root,) = of_kind(spans, "AGENT")
    assert root["attributes"]["input.value"] == '{"items":["turn 0"]}'


def test_list_attributes_come_back_as_lists(exported: dict[str, list[Span]]) -> None:
    spans = by_trace(exported[PLAIN])
    for trace in spans.values():
        llms = of_kind(trace, "LLM")
        (plan,) = [s for s in llms if not s["attributes"].get("autellix.llm_parent_ids")]
        plan_call = plan["attributes"]["autellix.call.id"]
        research = [s for s in llms if s is not plan]
        for span in research:
            assert span["attributes"]["autellix.llm_parent_ids"] == [plan_call]
            assert isinstance(span["attributes"]["autellix.parent_ids"], list)


def test_phoenix_ui_shows_the_fan_out(
    phoenix: Phoenix, exported: dict[str, list[Span]], browser: Any
) -> None:
    """Phoenix's own trace view draws the three ``research`` tasks side by side, each with
    its tool and LLM call (the screenshot in docs/graph.md comes from here)."""
    projects = httpx.get(f"{phoenix.url}/v1/projects", timeout=10).json()["data"]
    project_id = next(p["id"] for p in projects if p["name"] == CONTENT)
    (root,) = of_kind(exported[CONTENT], "AGENT")
    page = browser.new_page(viewport={"width": 1600, "height": 900})
    try:
        page.goto(f"{phoenix.url}/projects/{project_id}/traces/{root['context']['trace_id']}")
        tools = page.get_by_text("execute_tool lookup")
        tools.nth(2).wait_for(timeout=60_000)
        assert tools.count() == 3
        assert page.get_by_text("research", exact=True).count() == 3
        assert page.get_by_text("chat sim").count() == 4
        out = OUTPUT_DIR.parent / "interop"
        out.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=out / "phoenix-fan-out.png")
    finally:
        page.close()
