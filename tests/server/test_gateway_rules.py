"""The gateway's own rules, through HTTP as `autellix serve` runs them: routing with the
configured default, the DAG built from OTLP spans, API-key namespaces on /v1/traces, limits
and edge cases."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from autellix_backend.routing import LocalityBalancer
from autellix_backend.server import Limits
from autellix_graph import protocol as p
from tests.server.conftest import LiveServer, sim_config

PROTOBUF = {"content-type": "application/x-protobuf"}
CHAT = {"model": "sim", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


# OTLP payloads ---------------------------------------------------------------------------


def _value(value: str | Sequence[str]) -> AnyValue:
    if isinstance(value, str):
        return AnyValue(string_value=value)
    return AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=v) for v in value]))


def span(kind: str, node_id: str, parents: Sequence[str] = (), **attrs: str) -> Span:
    """An ended span of ``kind`` naming ``node_id`` and its parents (program id in ``attrs``)."""
    ident = p.ATTR_CALL_ID if kind == p.SPAN_KIND_LLM else p.ATTR_NODE_ID
    values: dict[str, str | Sequence[str]] = {p.ATTR_SPAN_KIND: kind, **attrs}
    if node_id:  # empty: the span names its node by other attributes
        values[ident] = node_id
    if parents:
        values[p.ATTR_PARENT_IDS] = list(parents)
    return Span(
        trace_id=b"\x01" * 16,
        span_id=(abs(hash((node_id, *attrs.values()))) % 2**63 + 1).to_bytes(8, "big"),
        name=node_id,
        start_time_unix_nano=1,
        end_time_unix_nano=2,
        attributes=[KeyValue(key=k, value=_value(v)) for k, v in values.items()],
    )


def export(*spans: Span) -> bytes:
    request = ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=list(spans))])]
    )
    return request.SerializeToString()


def post_spans(client: httpx.Client, *spans: Span) -> ExportTraceServiceResponse:
    r = client.post("/v1/traces", content=export(*spans), headers=PROTOBUF)
    assert r.status_code == 200, r.text
    return ExportTraceServiceResponse.FromString(r.content)


def edges(row: dict[str, Any]) -> set[tuple[str, str]]:
    return {(e["source"], e["target"]) for e in row["dag"]["edges"]}


# Routing -----------------------------------------------------------------------------------


def _chat(program: str, tokens: int, *, max_tokens: int = 2) -> dict[str, Any]:
    """A request whose prompt the gateway estimates at about ``tokens`` tokens."""
    return {
        "model": "sim",
        "messages": [{"role": "user", "content": "x" * (4 * tokens)}],
        "max_tokens": max_tokens,
    }


def test_locality_with_the_served_default_keeps_long_calls_home_and_spreads_short_ones(
    serve: Any,
) -> None:
    """`autellix serve` with no balancer settings: the locality rule at its documented 2,048
    tokens. A long call (its program's history) follows its program even to the busier engine;
    a short one goes to the least-used engine."""
    threshold = LocalityBalancer().threshold
    assert threshold == 2048
    live: LiveServer = serve(sim_config(2))
    assert live.config.balancer == "locality"
    headers = {p.HEADER_PROGRAM_ID: "traveller"}
    long_body, short_body = _chat("traveller", threshold + 200), _chat("traveller", threshold - 200)
    with httpx.Client(base_url=live.url, timeout=60) as client:
        first = client.post("/v1/chat/completions", json=long_body, headers=headers)
        home = first.headers["X-Autellix-Engine-Id"]
        other = ({"sim-0", "sim-1"} - {home}).pop()
        # Keep the home engine busy with a long streamed call of the same program.
        busy = {**long_body, "max_tokens": 2000, "stream": True}
        with client.stream("POST", "/v1/chat/completions", json=busy, headers=headers) as held:
            assert held.headers["X-Autellix-Engine-Id"] == home
            again = client.post("/v1/chat/completions", json=long_body, headers=headers)
            short = client.post("/v1/chat/completions", json=short_body, headers=headers)
    assert again.status_code == short.status_code == 200
    assert again.headers["X-Autellix-Engine-Id"] == home
    assert short.headers["X-Autellix-Engine-Id"] == other


# The DAG from OTLP -------------------------------------------------------------------------


def test_joins_with_several_parents_keep_every_edge(server: LiveServer) -> None:
    program = {p.ATTR_PROGRAM_ID: "otlp-join"}
    with server.client() as client:
        post_spans(
            client,
            span(p.SPAN_KIND_LLM, "plan", **program),
            *[span(p.SPAN_KIND_LLM, f"map-{i}", ["plan"], **program) for i in range(3)],
            span(p.SPAN_KIND_TOOL, "search", ["plan"], **program),
            span(p.SPAN_KIND_LLM, "reduce", ["map-0", "map-1", "map-2", "search"], **program),
        )
        row = client.get("/v1/programs/otlp-join").json()
    assert edges(row) == {
        *{("plan", f"map-{i}") for i in range(3)},
        ("plan", "search"),
        *{(f"map-{i}", "reduce") for i in range(3)},
        ("search", "reduce"),
    }


@pytest.mark.parametrize("attribute", [p.OPENINFERENCE_SESSION_ID, p.GEN_AI_CONVERSATION_ID])
def test_session_and_conversation_ids_name_the_program(server: LiveServer, attribute: str) -> None:
    program = f"conv-{attribute}"
    with server.client() as client:
        response = post_spans(client, span(p.SPAN_KIND_TOOL, "lookup", **{attribute: program}))
        row = client.get(f"/v1/programs/{program}").json()
    assert response.partial_success.rejected_spans == 0
    assert [n["node_id"] for n in row["dag"]["nodes"]] == ["lookup"]


def test_node_states_come_from_the_spans_end_status_and_state(server: LiveServer) -> None:
    program = {p.ATTR_PROGRAM_ID: "states"}
    done = span(p.SPAN_KIND_TOOL, "done", **program)
    open_ = span(p.SPAN_KIND_TOOL, "open", **program)
    open_.end_time_unix_nano = 0
    bad = span(p.SPAN_KIND_TOOL, "bad", **program)
    bad.status.code = Status.STATUS_CODE_ERROR
    stopped = span(p.SPAN_KIND_TOOL, "stopped", **{**program, p.ATTR_STATE: p.STATE_CANCELLED})
    failed_run = span(p.SPAN_KIND_PROGRAM, "run", **program)
    failed_run.status.code = Status.STATUS_CODE_ERROR
    with server.client() as client:
        post_spans(client, done, open_, bad, stopped)
        running = client.get("/v1/programs/states").json()
        post_spans(client, failed_run)
        failed = client.get("/v1/programs/states").json()
    statuses = {n["node_id"]: n["status"] for n in running["dag"]["nodes"]}
    assert statuses == {
        "done": "finished",
        "open": "running",
        "bad": "error",
        "stopped": "cancelled",
    }
    assert (running["state"], running["finished"]) == ("running", False)
    assert (failed["state"], failed["finished"]) == ("failed", True)


def test_openinference_graph_node_ids_place_nodes_and_edges(server: LiveServer) -> None:
    program = {p.OPENINFERENCE_SESSION_ID: "oi-graph"}
    nodes = [
        span("node", "", **{**program, p.OPENINFERENCE_GRAPH_NODE_ID: "agent"}),
        span(
            "tool",
            "",
            **{
                **program,
                p.OPENINFERENCE_GRAPH_NODE_ID: "search",
                p.OPENINFERENCE_GRAPH_NODE_PARENT_ID: "agent",
            },
        ),
    ]
    with server.client() as client:
        post_spans(client, *nodes)
        row = client.get("/v1/programs/oi-graph").json()
    assert [n["node_id"] for n in row["dag"]["nodes"]] == ["agent", "search"]
    assert edges(row) == {("agent", "search")}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not gzip", "malformed gzip body"),
        (gzip.compress(b"\x0a\x00" * 64)[:-12], "truncated gzip body"),
    ],
)
def test_a_bad_gzip_body_is_400_saying_why(server: LiveServer, body: bytes, message: str) -> None:
    r = httpx.post(
        f"{server.url}/v1/traces", content=body, headers={**PROTOBUF, "content-encoding": "gzip"}
    )
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "malformed_otlp" and error["message"].startswith(message)


def test_the_dag_keeps_the_newest_nodes_up_to_max_dag_nodes(serve: Any) -> None:
    live: LiveServer = serve(sim_config(limits=Limits(max_dag_nodes=5)))
    program = {p.ATTR_PROGRAM_ID: "trimmed"}
    with live.client() as client:
        post_spans(client, *[span(p.SPAN_KIND_TOOL, f"n{i}", **program) for i in range(8)])
        row = client.get("/v1/programs/trimmed").json()
    assert [n["node_id"] for n in row["dag"]["nodes"]] == [f"n{i}" for i in range(3, 8)]
    assert row["dag"]["num_dropped_nodes"] == 3


def test_late_spans_of_an_ended_program_do_not_bring_it_back(server: LiveServer) -> None:
    program = {p.ATTR_PROGRAM_ID: "ended-early"}
    with server.client() as client:
        post_spans(client, span(p.SPAN_KIND_TOOL, "before", **program))
        assert client.delete("/v1/programs/ended-early").status_code == 200
        late = post_spans(client, span(p.SPAN_KIND_TOOL, "after", **program))
        row = client.get("/v1/programs/ended-early").json()
        listed = {r["program_id"] for r in client.get("/v1/programs").json()["data"]}
    assert late.partial_success.rejected_spans == 1
    assert [n["node_id"] for n in row["dag"]["nodes"]] == ["before"]
    assert row["state"] == "finished" and "ended-early" not in listed


# API keys on /v1/traces --------------------------------------------------------------------

KEYS = {"alice": "sk-alice-secret", "bob": "sk-bob-secret"}


@pytest.fixture
def secured(serve: Any) -> Iterator[tuple[LiveServer, httpx.Client, httpx.Client]]:
    live: LiveServer = serve(sim_config(api_keys=KEYS))
    with live.client(api_key=KEYS["alice"]) as alice, live.client(api_key=KEYS["bob"]) as bob:
        yield live, alice, bob


def test_traces_need_a_key(secured: tuple[LiveServer, httpx.Client, httpx.Client]) -> None:
    live, _, _ = secured
    body = export(span(p.SPAN_KIND_TOOL, "t", **{p.ATTR_PROGRAM_ID: "x"}))
    for key in (None, "sk-wrong"):
        with live.client(api_key=key) as client:
            r = client.post("/v1/traces", content=body, headers=PROTOBUF)
        assert r.status_code == 401
        assert r.json()["error"]["type"] == "authentication_error"


def test_spans_naming_another_keys_program_land_in_the_senders_namespace(
    secured: tuple[LiveServer, httpx.Client, httpx.Client],
) -> None:
    _, alice, bob = secured
    program = {p.ATTR_PROGRAM_ID: "plan-b"}
    post_spans(alice, span(p.SPAN_KIND_TOOL, "alice-step", **program))
    post_spans(bob, span(p.SPAN_KIND_TOOL, "bob-step", ["alice-step"], **program))
    mine = alice.get("/v1/programs/plan-b").json()
    theirs = bob.get("/v1/programs/plan-b").json()
    assert (mine["owner"], theirs["owner"]) == ("alice", "bob")
    assert [n["node_id"] for n in mine["dag"]["nodes"]] == ["alice-step"]
    assert edges(mine) == set()
    assert [n["node_id"] for n in theirs["dag"]["nodes"]] == ["bob-step"]


# Limits and failures -----------------------------------------------------------------------


def test_too_many_calls_in_flight_is_429_until_one_ends(serve: Any) -> None:
    live: LiveServer = serve(sim_config(limits=Limits(max_inflight_calls=1)))
    long = {**CHAT, "max_tokens": 2000, "stream": True}
    with httpx.Client(base_url=live.url, timeout=60) as client:
        with client.stream("POST", "/v1/chat/completions", json=long) as held:
            assert held.status_code == 200
            refused = client.post("/v1/chat/completions", json=CHAT)
        assert refused.status_code == 429
        error = refused.json()["error"]
        assert (error["code"], error["type"]) == ("too_many_calls", "rate_limit_error")
        _until(lambda: client.get("/healthz").json()["num_inflight_calls"] == 0)
        assert client.post("/v1/chat/completions", json=CHAT).status_code == 200


def test_a_gzip_body_too_large_once_inflated_is_413(serve: Any) -> None:
    live: LiveServer = serve(sim_config(limits=Limits(max_body_bytes=4096)))
    spans = [span(p.SPAN_KIND_TOOL, f"node-{i}", **{p.ATTR_PROGRAM_ID: "zip"}) for i in range(200)]
    raw = export(*spans)
    packed = gzip.compress(raw)
    assert len(packed) < 4096 < len(raw)
    r = httpx.post(
        f"{live.url}/v1/traces", content=packed, headers={**PROTOBUF, "content-encoding": "gzip"}
    )
    assert r.status_code == 413
    assert r.json()["error"] == {
        **r.json()["error"],
        "code": "too_large",
        "message": "decompressed body exceeds 4096 bytes",
    }
    assert httpx.get(f"{live.url}/v1/programs/zip").status_code == 404


def test_an_engine_failing_mid_stream_ends_the_stream_with_an_error_event(serve: Any) -> None:
    live: LiveServer = serve(sim_config(1))
    body = {**CHAT, "max_tokens": 2000, "stream": True}
    headers = {p.HEADER_PROGRAM_ID: "doomed", p.HEADER_CALL_ID: "c1"}
    events: list[str] = []
    with httpx.Client(base_url=live.url, timeout=60) as client:
        with client.stream("POST", "/v1/chat/completions", json=body, headers=headers) as r:
            assert r.status_code == 200
            for line in r.iter_lines():
                if not line.startswith("data: "):
                    continue
                events.append(line[len("data: ") :])
                if len(events) == 2:
                    live.run(live.engine("sim-0").fail, "GPU fell off the bus")
        row = client.get("/v1/programs/doomed").json()
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["code"] == "engine_unavailable" and "GPU fell off the bus" in error["message"]
    assert all("choices" in json.loads(e) for e in events[:-2])
    assert {n["node_id"]: n["status"] for n in row["dag"]["nodes"]} == {"c1": "error"}


def test_programs_are_listed_most_recently_active_first_and_limited(serve: Any) -> None:
    live: LiveServer = serve(sim_config(1))
    with live.client() as client:
        for name in ("first", "second", "third"):
            assert client.post("/v1/programs", json={"program_id": name}).status_code == 201
        touched = client.post(
            "/v1/chat/completions", json=CHAT, headers={p.HEADER_PROGRAM_ID: "first"}
        )
        assert touched.status_code == 200

        def listed(**params: int) -> list[str]:
            data = client.get("/v1/programs", params=params).json()["data"]
            return [row["program_id"] for row in data]

        assert listed() == ["first", "third", "second"]
        assert listed(limit=2) == ["first", "third"]
        assert client.get("/v1/programs", params={"limit": 0}).status_code == 400


def _until(predicate: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)
