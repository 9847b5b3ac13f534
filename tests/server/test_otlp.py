"""The OTLP/HTTP receiver, fed by the OpenTelemetry SDK's own exporter and by OTLP/JSON."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Tracer
from opentelemetry.util.types import AttributeValue

from autellix_graph import protocol as p
from tests.server.conftest import LiveServer


@pytest.fixture(params=[Compression.NoCompression, Compression.Gzip], ids=["plain", "gzip"])
def tracer(server: LiveServer, request: pytest.FixtureRequest) -> Iterator[Tracer]:
    exporter = OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", compression=request.param)
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("autellix-test")
    provider.shutdown()


def _attrs(kind: str, program: str, **more: AttributeValue) -> dict[str, AttributeValue]:
    return {p.ATTR_SPAN_KIND: kind, p.ATTR_PROGRAM_ID: program, **more}


def test_sdk_spans_become_the_program_dag(server: LiveServer, tracer: Tracer) -> None:
    program = f"otlp-{id(tracer)}"
    before = server.metric("autellix_otlp_spans_total", result="placed")
    thread = {p.ATTR_THREAD_ID: "t1", p.ATTR_NODE_ID: "t1", p.ATTR_PARENT_THREAD_ID: "main"}
    with (
        tracer.start_as_current_span("graph", attributes=_attrs(p.SPAN_KIND_PROGRAM, program)),
        tracer.start_as_current_span(
            "agent", attributes=_attrs(p.SPAN_KIND_NODE, program, **thread)
        ),
    ):
        tracer.start_span(
            "chat",
            attributes=_attrs(
                p.SPAN_KIND_LLM,
                program,
                **{p.ATTR_CALL_ID: "call-1", p.ATTR_THREAD_ID: "t1", p.ATTR_PARENT_IDS: ["t1"]},
            ),
        ).end()
        tracer.start_span(
            "search",
            attributes=_attrs(
                p.SPAN_KIND_TOOL,
                program,
                **{
                    p.ATTR_NODE_ID: "tool-1",
                    p.ATTR_THREAD_ID: "t1",
                    p.ATTR_PARENT_IDS: ["call-1"],
                    p.ATTR_NODE_NAME: "web_search",
                },
            ),
        ).end()
    row = httpx.get(f"{server.url}/v1/programs/{program}").json()
    nodes = {n["node_id"]: n for n in row["dag"]["nodes"]}
    assert nodes["call-1"]["kind"] == "llm"
    assert nodes["tool-1"]["name"] == "web_search" and nodes["tool-1"]["status"] == "finished"
    assert {(e["source"], e["target"]) for e in row["dag"]["edges"]} >= {
        ("t1", "call-1"),
        ("call-1", "tool-1"),
    }
    threads = {t["thread_id"]: t for t in row["threads"]}
    assert threads["t1"]["parent_thread_id"] == "main"
    assert row["finished"] is True
    assert server.metric("autellix_otlp_spans_total", result="placed") == before + 4


def test_spans_without_a_program_are_counted_not_placed(server: LiveServer, tracer: Tracer) -> None:
    before = server.metric("autellix_otlp_spans_total", result="unplaced")
    tracer.start_span("stray", attributes={"http.method": "GET"}).end()
    tracer.start_span("odd", attributes=_attrs("mystery", "some-program")).end()
    assert server.metric("autellix_otlp_spans_total", result="unplaced") == before + 2
    assert httpx.get(f"{server.url}/v1/programs/some-program").status_code == 404


def test_otlp_json_with_hex_ids(server: LiveServer) -> None:
    def kv(key: str, value: object) -> dict[str, object]:
        if isinstance(value, list):
            return {
                "key": key,
                "value": {"arrayValue": {"values": [{"stringValue": v} for v in value]}},
            }
        return {"key": key, "value": {"stringValue": value}}

    span = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b174",
        "name": "tool",
        "startTimeUnixNano": "1544712660000000000",
        "endTimeUnixNano": "1544712661000000000",
        "attributes": [
            kv(p.ATTR_SPAN_KIND, p.SPAN_KIND_TOOL),
            kv(p.ATTR_PROGRAM_ID, "json-prog"),
            kv(p.ATTR_NODE_ID, "n2"),
            kv(p.ATTR_PARENT_IDS, ["n1"]),
        ],
    }
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    r = httpx.post(
        f"{server.url}/v1/traces",
        content=gzip.compress(json.dumps(body).encode()),
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    row = httpx.get(f"{server.url}/v1/programs/json-prog").json()
    assert [(e["source"], e["target"]) for e in row["dag"]["edges"]] == [("n1", "n2")]


@pytest.mark.parametrize(
    ("content", "content_type", "encoding", "status"),
    [
        (b"\xff\xff\xff not protobuf", "application/x-protobuf", "", 400),
        (b'{"resourceSpans": [', "application/json", "", 400),
        (b'{"resourceSpans": 3}', "application/json", "", 400),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "zz"}]}]}]}',
            "application/json",
            "",
            400,
        ),
        (b"not gzip", "application/x-protobuf", "gzip", 400),
        (b"{}", "text/plain", "", 415),
    ],
)
def test_malformed_bodies_are_rejected_and_the_service_lives_on(
    server: LiveServer, content: bytes, content_type: str, encoding: str, status: int
) -> None:
    headers = {"content-type": content_type}
    if encoding:
        headers["content-encoding"] = encoding
    r = httpx.post(f"{server.url}/v1/traces", content=content, headers=headers)
    assert r.status_code == status, r.text
    assert httpx.get(f"{server.url}/healthz").status_code == 200


def test_empty_export_is_accepted(server: LiveServer) -> None:
    r = httpx.post(
        f"{server.url}/v1/traces", content=b"", headers={"content-type": "application/x-protobuf"}
    )
    assert r.status_code == 200
    ExportTraceServiceResponse.FromString(r.content)
