"""What `POST /v1/traces` promises, through HTTP: which attribute names a span's program,
node, name, thread and parents; span times; the counts and errors it answers; encodings
and their limits."""

from __future__ import annotations

import gzip
import json
import tracemalloc
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from autellix_backend.server import Limits
from autellix_graph import protocol as p
from tests.server.conftest import LiveServer, sim_config

PROTOBUF = {"content-type": "application/x-protobuf"}
NOT_LISTS: list[dict[str, object]] = [
    {"resourceSpans": [3]},
    {"resourceSpans": {}},
    {"resourceSpans": [{"scopeSpans": [3]}]},
    {"resourceSpans": [{"scopeSpans": [{"spans": [3]}]}]},
]
DROPPED = "spans without a program id and autellix span kind were dropped"
SECOND = 1_000_000_000
KIND, PROGRAM, NODE, CALL = p.ATTR_SPAN_KIND, p.ATTR_PROGRAM_ID, p.ATTR_NODE_ID, p.ATTR_CALL_ID
NAME, THREAD, PARENT_THREAD = p.ATTR_NODE_NAME, p.ATTR_THREAD_ID, p.ATTR_PARENT_THREAD_ID
PARENTS, OI_PARENT = p.ATTR_PARENT_IDS, p.OPENINFERENCE_GRAPH_NODE_PARENT_ID


def _value(value: object) -> AnyValue:
    if value is None:
        return AnyValue()
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, Mapping):
        return AnyValue(kvlist_value=KeyValueList(values=_kvs(value)))
    assert isinstance(value, Sequence)
    return AnyValue(array_value=ArrayValue(values=[_value(v) for v in value]))


def _kvs(attrs: Mapping[str, object]) -> list[KeyValue]:
    return [KeyValue(key=k, value=_value(v)) for k, v in attrs.items()]


def span(
    name: str = "",
    attrs: Mapping[str, object] | None = None,
    *,
    span_id: bytes = b"\x00\x00\x00\x00\x00\x00\x00\x01",
    start: int = 1_700_000_000 * SECOND,
    end: int = 1_700_000_001 * SECOND,
) -> Span:
    """A span with ``attrs``, ended one second after it started unless ``end`` is 0."""
    return Span(
        trace_id=b"\x01" * 16,
        span_id=span_id,
        name=name,
        start_time_unix_nano=start,
        end_time_unix_nano=end,
        attributes=_kvs(attrs or {}),
    )


def tool(program: str, node: str, more: Mapping[str, object] | None = None) -> Span:
    """An ended tool span: node ``node`` of ``program``, named ``node``."""
    return span(node, {KIND: "tool", PROGRAM: program, NODE: node, **(more or {})})


def export(*spans: Span, resource: Mapping[str, object] | None = None) -> bytes:
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=_kvs(resource or {})),
                scope_spans=[ScopeSpans(spans=list(spans))],
            )
        ]
    )
    return bytes(request.SerializeToString())


def post(live: LiveServer, *spans: Span, **kwargs: Any) -> ExportTraceServiceResponse:
    r = httpx.post(f"{live.url}/v1/traces", content=export(*spans, **kwargs), headers=PROTOBUF)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-protobuf"
    response = ExportTraceServiceResponse()
    response.ParseFromString(r.content)
    return response


def program(live: LiveServer, program_id: str) -> dict[str, Any]:
    r = httpx.get(f"{live.url}/v1/programs/{program_id}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def nodes(live: LiveServer, program_id: str) -> dict[str, dict[str, Any]]:
    return {n["node_id"]: n for n in program(live, program_id)["dag"]["nodes"]}


def edges(live: LiveServer, program_id: str) -> list[tuple[str, str]]:
    return [(e["source"], e["target"]) for e in program(live, program_id)["dag"]["edges"]]


def error_of(r: httpx.Response) -> tuple[int, str, str]:
    error = r.json()["error"]
    return r.status_code, error["code"], error["message"]


# What names what ---------------------------------------------------------------------------


def test_the_answer_and_the_metrics_count_placed_and_rejected_spans(server: LiveServer) -> None:
    placed = [
        span("run", {KIND: "program", PROGRAM: "counted"}),
        tool("counted", "a"),
    ]
    rejected = [span("no-program", {KIND: "tool"}), span("no-kind")]
    rejected += [tool("counted", "c", {KIND: "mystery"}), tool("counted", "d", {KIND: ["tool"]})]
    before = {
        n: server.metric("autellix_otlp_spans_total", result=n) for n in ("placed", "unplaced")
    }
    clean = post(server, *placed)
    mixed = post(server, *placed, *rejected)
    assert not clean.HasField("partial_success")
    assert (mixed.partial_success.rejected_spans, mixed.partial_success.error_message) == (
        4,
        DROPPED,
    )
    after = {n: server.metric("autellix_otlp_spans_total", result=n) for n in before}
    assert (after["placed"] - before["placed"], after["unplaced"] - before["unplaced"]) == (4, 4)


def test_which_attribute_names_the_program(server: LiveServer) -> None:
    ids: dict[str, object] = {
        PROGRAM: "by-autellix",
        p.OPENINFERENCE_SESSION_ID: "by-session",
        p.GEN_AI_CONVERSATION_ID: "by-conversation",
    }
    post(server, span("n", {KIND: "tool", NODE: "n", **ids}))
    del ids[PROGRAM]
    post(server, span("n", {KIND: "tool", NODE: "n", **ids}))
    post(server, span("n", {KIND: "tool", NODE: "n", PROGRAM: 4242}))
    assert list(nodes(server, "by-autellix")) == list(nodes(server, "by-session")) == ["n"]
    assert list(nodes(server, "4242")) == ["n"]
    assert httpx.get(f"{server.url}/v1/programs/by-conversation").status_code == 404


def test_program_ids_that_are_not_ids_are_rejected(server: LiveServer) -> None:
    fine, too_long = "p" * 256, "q" * 257
    bad = [True, too_long, "has space", ""]
    response = post(
        server,
        *[span("bad", {KIND: "tool", PROGRAM: b}) for b in bad],
        tool(fine, "ok"),
    )
    assert response.partial_success.rejected_spans == len(bad)
    assert list(nodes(server, fine)) == ["ok"]


def test_resource_attributes_apply_to_every_span_and_span_attributes_win(
    server: LiveServer,
) -> None:
    post(
        server,
        span("inherits", {KIND: "tool", NODE: "inherits"}),
        tool("own-program", "overrides"),
        resource={PROGRAM: "from-resource", "service.name": "agent"},
    )
    assert list(nodes(server, "from-resource")) == ["inherits"]
    assert list(nodes(server, "own-program")) == ["overrides"]


def test_which_attribute_names_the_node(server: LiveServer) -> None:
    both = {PROGRAM: "naming", CALL: "the-call", NODE: "the-node"}
    prog = {PROGRAM: "naming"}
    post(
        server,
        span("a", {KIND: "llm", **both}),
        span("b", {KIND: "tool", **both}),
        span("c", {KIND: "llm", NODE: "llm-node", **prog}),
        span("d", {KIND: "node", **prog}, span_id=bytes.fromhex("00ab00cd00ef0012")),
        span("e", {KIND: "node", **prog}, span_id=b""),
    )
    found = nodes(server, "naming")
    assert list(found) == ["the-call", "the-node", "llm-node", "00ab00cd00ef0012", "span"]
    assert [n["kind"] for n in found.values()] == ["llm", "tool", "llm", "node", "node"]


def test_node_names_threads_and_times(server: LiveServer) -> None:
    prog = "details"
    post(
        server,
        tool(prog, "named", {NAME: "web_search", THREAD: "t2"}),
        tool(prog, "unnamed", {NAME: 7}),
        tool(prog, "long", {NAME: "x" * 300, THREAD: "t3", PARENT_THREAD: "t2"}),
        span("open", {KIND: "tool", PROGRAM: prog, NODE: "open"}, start=0, end=0),
        span(
            "timed",
            {KIND: "tool", PROGRAM: prog, NODE: "timed"},
            start=1_700_000_000 * SECOND + SECOND // 2,
            end=1_700_000_003 * SECOND + SECOND // 4,
        ),
    )
    found = nodes(server, prog)
    assert {k: (n["name"], n["thread_id"]) for k, n in found.items()} == {
        "named": ("web_search", "t2"),
        "unnamed": ("unnamed", "main"),
        "long": ("x" * 256, "t3"),
        "open": ("open", "main"),
        "timed": ("timed", "main"),
    }
    threads = {t["thread_id"]: t["parent_thread_id"] for t in program(server, prog)["threads"]}
    assert threads == {"t2": None, "main": None, "t3": "t2"}
    ui = httpx.get(f"{server.url}/v1/ui/program", params={"program_id": prog}).json()
    times = {n["node_id"]: (n["start"], n["end"], n["status"]) for n in ui["nodes"]}
    assert times["timed"] == (
        pytest.approx(1_700_000_000.5, abs=1e-3),
        pytest.approx(1_700_000_003.25, abs=1e-3),
        "finished",
    )
    assert times["open"] == (None, None, "running")


def test_parent_ids_as_list_or_comma_string_valid_and_not_the_node_itself(
    server: LiveServer,
) -> None:
    prog = "parents"
    post(
        server,
        tool(prog, "listed", {PARENTS: ["a", " b ", "", 5, "listed", "has space"]}),
        tool(prog, "joined", {PARENTS: "c, d,,joined, " + "z" * 257}),
        tool(prog, "both", {PARENTS: ["e"], OI_PARENT: "ignored"}),
        tool(prog, "oi", {OI_PARENT: "f"}),
        tool(prog, "only-self", {PARENTS: "only-self", OI_PARENT: "g"}),
        tool(prog, "odd-values", {"empty": None, "nested": {"k": "v"}, PARENTS: [None]}),
    )
    assert edges(server, prog) == [
        ("a", "listed"),
        ("b", "listed"),
        ("c", "joined"),
        ("d", "joined"),
        ("e", "both"),
        ("f", "oi"),
        ("g", "only-self"),
    ]
    assert "odd-values" in nodes(server, prog)


def test_a_program_span_ends_its_program_and_is_counted_placed(server: LiveServer) -> None:
    prog = {KIND: "program", PROGRAM: "run"}
    opened = post(server, span("run", prog, end=0))
    assert opened.partial_success.rejected_spans == 0
    assert (program(server, "run")["finished"], program(server, "run")["dag"]["nodes"]) == (
        False,
        [],
    )
    post(server, span("run", prog))
    ended = program(server, "run")
    # Ended without an error status: finished, and not failed, in both fields (the UI
    # reads ``state``).
    assert (ended["finished"], ended["state"]) == (True, "finished")


def test_a_program_span_ended_by_an_interrupt_leaves_its_program_running(
    server: LiveServer,
) -> None:
    # A run paused by interrupt() ends its program span; the resumed run continues the same
    # program, so the program has not finished until a run of it ends without pausing.
    paused = {KIND: "program", PROGRAM: "paused", p.ATTR_STATE: p.STATE_INTERRUPTED}
    post(server, span("run", paused))
    assert (program(server, "paused")["finished"], program(server, "paused")["state"]) == (
        False,
        "running",
    )
    post(server, span("run", {KIND: "program", PROGRAM: "paused"}, span_id=b"\x02" * 8))
    ended = program(server, "paused")
    assert (ended["finished"], ended["state"]) == (True, "finished")


def test_spans_are_rejected_not_failed_when_the_process_table_is_full(serve: Any) -> None:
    live: LiveServer = serve(sim_config(limits=Limits(max_programs=1)))
    chat = {
        "model": "sim",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 2000,
        "stream": True,
    }
    with httpx.Client(base_url=live.url, timeout=60) as client:
        headers = {p.HEADER_PROGRAM_ID: "busy"}
        with client.stream("POST", "/v1/chat/completions", json=chat, headers=headers) as held:
            assert held.status_code == 200
            response = post(live, tool("newcomer", "n"))
    assert response.partial_success.rejected_spans == 1
    assert httpx.get(f"{live.url}/v1/programs/newcomer").status_code == 404


# Encodings and their errors ----------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["gzip", "GZip", "identity", ""])
def test_content_encodings_accepted(server: LiveServer, encoding: str) -> None:
    program_id = f"enc-{encoding.strip() or 'none'}"
    body = export(tool(program_id, "n"))
    if encoding.strip().lower() == "gzip":
        body = gzip.compress(body)
    headers = {**PROTOBUF, "content-encoding": encoding} if encoding else PROTOBUF
    r = httpx.post(f"{server.url}/v1/traces", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert list(nodes(server, program_id)) == ["n"]


@pytest.mark.parametrize(
    ("content", "headers", "expected"),
    [
        (
            b"",
            {**PROTOBUF, "content-encoding": "br"},
            (415, "unsupported", "unsupported Content-Encoding 'br'"),
        ),
        (
            b"{}",
            {"content-type": "text/plain"},
            (
                415,
                "unsupported_media_type",
                "Content-Type must be application/x-protobuf or application/json",
            ),
        ),
        (
            b"[]",
            {"content-type": "application/json"},
            (400, "malformed_otlp", "malformed OTLP JSON: the body must be a JSON object"),
        ),
        *[
            (
                json.dumps(body).encode(),
                {"content-type": "application/json"},
                (
                    400,
                    "malformed_otlp",
                    "malformed OTLP JSON: resourceSpans, scopeSpans and spans must be lists of"
                    " objects",
                ),
            )
            for body in NOT_LISTS
        ],
    ],
)
def test_refusals_say_why(
    server: LiveServer, content: bytes, headers: dict[str, str], expected: tuple[int, str, str]
) -> None:
    r = httpx.post(f"{server.url}/v1/traces", content=content, headers=headers)
    assert error_of(r) == expected


def test_malformed_protobuf_and_gzip_say_so(server: LiveServer) -> None:
    url = f"{server.url}/v1/traces"
    bad = httpx.post(url, content=b"\xff\xff\xff", headers=PROTOBUF)
    zlib_not_gzip = httpx.post(
        url,
        content=zlib.compress(export(tool("zlib", "n"))),
        headers={**PROTOBUF, "content-encoding": "gzip"},
    )
    status, code, message = error_of(bad)
    assert (status, code) == (400, "malformed_otlp")
    assert message.startswith("malformed OTLP protobuf: ")
    status, code, message = error_of(zlib_not_gzip)
    assert (status, code) == (400, "malformed_otlp")
    assert message.startswith("malformed gzip body: ")


def test_the_inflated_size_limit_is_exact(serve: Any) -> None:
    limit = 4096
    live: LiveServer = serve(sim_config(limits=Limits(max_body_bytes=limit)))

    def padded(size: int) -> bytes:
        body = json.dumps({"resourceSpans": []}).encode()
        return body + b" " * (size - len(body))

    answers = [
        httpx.post(
            f"{live.url}/v1/traces",
            content=gzip.compress(padded(size)),
            headers={"content-type": "application/json", "content-encoding": "gzip"},
        )
        for size in (limit, limit + 1)
    ]
    assert answers[0].status_code == 200, answers[0].text
    assert error_of(answers[1]) == (413, "too_large", f"decompressed body exceeds {limit} bytes")


def test_otlp_json_with_parameters_unknown_fields_and_hex_span_ids(server: LiveServer) -> None:
    def kv(key: str, value: str) -> dict[str, object]:
        return {"key": key, "value": {"stringValue": value}}

    spans = [
        {
            "traceId": "5b8efff798038103d269b633813fc60c",
            "spanId": "eee19b7ec3c1b174",
            "parentSpanId": "0102030405060708",
            "name": "step",
            "aFieldFromTheFuture": 1,
            "attributes": [kv(KIND, "node"), kv(PROGRAM, "hex")],
        },
        {"name": "stray", "attributes": []},
    ]
    body = {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}
    r = httpx.post(
        f"{server.url}/v1/traces",
        content=json.dumps(body).encode(),
        headers={"content-type": "Application/JSON; charset=utf-8"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {"partialSuccess": {"rejectedSpans": "1", "errorMessage": DROPPED}}
    assert list(nodes(server, "hex")) == ["eee19b7ec3c1b174"]


def test_protobuf_media_type_spellings(server: LiveServer) -> None:
    for media in ("application/protobuf", "Application/X-Protobuf; proto=v1"):
        r = httpx.post(
            f"{server.url}/v1/traces",
            content=export(tool("spelled", media.split(";")[0].lower().replace("/", "-"))),
            headers={"content-type": media},
        )
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/x-protobuf"
    assert list(nodes(server, "spelled")) == ["application-protobuf", "application-x-protobuf"]


def test_a_gzip_bomb_is_refused_without_being_inflated(server: LiveServer) -> None:
    """64 MiB of zeros in a 64 KiB body: the receiver inflates no more than the limit
    (4 MiB by default) plus one byte before answering 413, so its memory stays bounded."""
    limit = server.config.limits.max_body_bytes
    inflated = 64 * 1024 * 1024
    assert inflated >= 16 * limit
    bomb = gzip.compress(b"\0" * inflated, compresslevel=9)
    tracemalloc.start()
    try:
        r = httpx.post(
            f"{server.url}/v1/traces",
            content=bomb,
            headers={**PROTOBUF, "content-encoding": "gzip"},
            timeout=60,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert error_of(r) == (413, "too_large", f"decompressed body exceeds {limit} bytes")
    assert peak < inflated // 2, peak
