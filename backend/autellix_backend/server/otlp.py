"""OTLP/HTTP trace receiver: decode the front end's spans and place them in the process table.

Spans are decoded with ``opentelemetry-proto`` (protobuf or OTLP/JSON, optionally gzipped).
A span is *placed* when it names a program (``autellix.program.id``, or OpenInference
``session.id``) and a kind from ``autellix_protocol.SPAN_KINDS``: it becomes a node of
its program's DAG, with edges from its parents and its thread in the thread tree; a program
span that has ended marks its program finished. Other spans are counted as unplaced and
reported back in ``partial_success.rejected_spans``.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from autellix_backend.server.dag import DagNode
from autellix_backend.server.errors import APIError, bad_request
from autellix_backend.server.programs import ProgramRegistry
from autellix_backend.server.tagging import check_id
from autellix_protocol.attributes import (
    ATTR_CALL_ID,
    ATTR_NODE_ID,
    ATTR_NODE_NAME,
    ATTR_PARENT_IDS,
    ATTR_PARENT_THREAD_ID,
    ATTR_PROGRAM_ID,
    ATTR_SPAN_KIND,
    ATTR_STATE,
    ATTR_THREAD_ID,
    GEN_AI_CONVERSATION_ID,
    OPENINFERENCE_GRAPH_NODE_ID,
    OPENINFERENCE_GRAPH_NODE_PARENT_ID,
    OPENINFERENCE_SESSION_ID,
    SPAN_KIND_LLM,
    SPAN_KIND_PROGRAM,
    SPAN_KINDS,
    STATE_CANCELLED,
    STATE_INTERRUPTED,
)

PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf")
JSON_TYPES = ("application/json",)
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


@dataclass(frozen=True, slots=True)
class SpanFacts:
    """What a span says about the program it belongs to."""

    program_id: str | None
    kind: str | None
    node_id: str
    name: str
    thread_id: str
    parent_thread_id: str | None
    parent_ids: tuple[str, ...]
    ended: bool
    failed: bool
    cancelled: bool = False
    """The front end stopped the run because another part of the program failed."""
    interrupted: bool = False
    """A program span whose run paused for human input: the program goes on when resumed."""
    start: float | None = None
    """Unix time the span started (None when the exporter sent none)."""
    end: float | None = None


@dataclass(frozen=True, slots=True)
class IngestResult:
    num_placed: int
    num_unplaced: int


def decode_request(
    body: bytes, *, content_type: str, content_encoding: str, max_bytes: int
) -> ExportTraceServiceRequest:
    """Parse an OTLP/HTTP export body; raises ``APIError`` (400, 413, 415) when it cannot."""
    if content_encoding.strip().lower() == "gzip":
        body = _gunzip(body, max_bytes)
    elif content_encoding.strip() not in ("", "identity"):
        raise APIError(
            415, f"unsupported Content-Encoding {content_encoding!r}", code="unsupported"
        )
    media = content_type.split(";")[0].strip().lower()
    request = ExportTraceServiceRequest()
    if media in PROTOBUF_TYPES:
        try:
            request.ParseFromString(body)
        except DecodeError as exc:
            raise bad_request(f"malformed OTLP protobuf: {exc}", code="malformed_otlp") from None
    elif media in JSON_TYPES:
        _parse_json(body, request)
    else:
        raise APIError(
            415,
            "Content-Type must be application/x-protobuf or application/json",
            code="unsupported_media_type",
        )
    return request


def encode_response(result: IngestResult, *, content_type: str) -> tuple[bytes, str]:
    """The export response in the request's encoding, reporting unplaced spans."""
    response = ExportTraceServiceResponse()
    if result.num_unplaced:
        response.partial_success.CopyFrom(
            ExportTracePartialSuccess(
                rejected_spans=result.num_unplaced,
                error_message="spans without a program id and autellix span kind were dropped",
            )
        )
    if content_type.split(";")[0].strip().lower() in JSON_TYPES:
        return json_format.MessageToJson(response).encode(), "application/json"
    return response.SerializeToString(), "application/x-protobuf"


def ingest(
    request: ExportTraceServiceRequest, programs: ProgramRegistry, owner: str | None
) -> IngestResult:
    """Place every span of ``request`` in ``programs``; never raises for bad span content."""
    placed = unplaced = 0
    for facts in span_facts(request, max_id_length=programs.limits.max_id_length):
        if place(facts, programs, owner):
            placed += 1
        else:
            unplaced += 1
    return IngestResult(placed, unplaced)


def span_facts(request: ExportTraceServiceRequest, *, max_id_length: int) -> Iterator[SpanFacts]:
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                yield _facts(span, {**resource, **_attributes(span.attributes)}, max_id_length)


def place(facts: SpanFacts, programs: ProgramRegistry, owner: str | None) -> bool:
    """Record one span in its program; False when it cannot be placed."""
    if facts.program_id is None or facts.kind not in SPAN_KINDS:
        return False
    try:
        session = programs.ensure(owner, facts.program_id)
    except APIError:
        return False
    if session is None:
        return False
    if facts.kind == SPAN_KIND_PROGRAM:
        if facts.ended:
            session.finished = not facts.interrupted
            session.failed = facts.failed
        return True
    programs.add_thread(session, facts.thread_id, facts.parent_thread_id)
    status = (
        "cancelled"
        if facts.cancelled
        else "error"
        if facts.failed
        else "finished"
        if facts.ended
        else "running"
    )
    node = DagNode(
        facts.node_id, facts.kind, facts.name, facts.thread_id, status, facts.start, facts.end
    )
    session.dag.upsert(node, facts.parent_ids)
    return True


def _facts(span: Span, attrs: Mapping[str, Any], max_id_length: int) -> SpanFacts:
    def ident(*names: str) -> str | None:
        for name in names:
            value = attrs.get(name)
            if isinstance(value, str | int) and not isinstance(value, bool):
                try:
                    return check_id(str(value), name, max_id_length)
                except APIError:
                    return None
        return None

    kind = attrs.get(ATTR_SPAN_KIND)
    kind = kind if isinstance(kind, str) else None
    node_names = (ATTR_CALL_ID, ATTR_NODE_ID) if kind == SPAN_KIND_LLM else (ATTR_NODE_ID,)
    node_id = ident(*node_names, OPENINFERENCE_GRAPH_NODE_ID) or span.span_id.hex() or "span"
    parents = [p for p in _strings(attrs.get(ATTR_PARENT_IDS)) if p != node_id]
    if not parents:
        parents = list(_strings(attrs.get(OPENINFERENCE_GRAPH_NODE_PARENT_ID)))
    parent_ids = tuple(
        dict.fromkeys(p for p in parents if _valid(p, max_id_length) and p != node_id)
    )
    name = attrs.get(ATTR_NODE_NAME)
    return SpanFacts(
        program_id=ident(ATTR_PROGRAM_ID, OPENINFERENCE_SESSION_ID, GEN_AI_CONVERSATION_ID),
        kind=kind,
        node_id=node_id,
        name=(name if isinstance(name, str) else span.name)[:256],
        thread_id=ident(ATTR_THREAD_ID) or "main",
        parent_thread_id=ident(ATTR_PARENT_THREAD_ID),
        parent_ids=parent_ids,
        ended=span.end_time_unix_nano > 0,
        failed=span.status.code == Status.STATUS_CODE_ERROR,
        cancelled=attrs.get(ATTR_STATE) == STATE_CANCELLED,
        interrupted=attrs.get(ATTR_STATE) == STATE_INTERRUPTED,
        start=span.start_time_unix_nano / 1e9 if span.start_time_unix_nano > 0 else None,
        end=span.end_time_unix_nano / 1e9 if span.end_time_unix_nano > 0 else None,
    )


def _attributes(items: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in items}


def _value(value: AnyValue) -> Any:
    which = value.WhichOneof("value")
    if which == "array_value":
        return [_value(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    if which is None:
        return None
    return getattr(value, which)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield from (p.strip() for p in value.split(",") if p.strip())
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str) and item.strip():
                yield item.strip()


def _valid(value: str, max_id_length: int) -> bool:
    try:
        check_id(value, "parent id", max_id_length)
    except APIError:
        return False
    return True


def _gunzip(body: bytes, max_bytes: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(body, max_bytes + 1)
    except zlib.error as exc:
        raise bad_request(f"malformed gzip body: {exc}", code="malformed_otlp") from None
    if len(data) > max_bytes:
        raise APIError(413, f"decompressed body exceeds {max_bytes} bytes", code="too_large")
    if not inflater.eof:
        raise bad_request("truncated gzip body", code="malformed_otlp")
    return data


def _parse_json(body: bytes, request: ExportTraceServiceRequest) -> None:
    """OTLP/JSON writes trace and span ids as hex; protobuf's JSON mapping expects base64."""
    try:
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        for span in _json_spans(data):
            for name in _ID_FIELDS:
                if isinstance(span.get(name), str):
                    span[name] = base64.b64encode(bytes.fromhex(span[name])).decode()
        json_format.ParseDict(data, request, ignore_unknown_fields=True)
    except (ValueError, TypeError, RecursionError, binascii.Error, json_format.ParseError) as exc:
        raise bad_request(f"malformed OTLP JSON: {exc}", code="malformed_otlp") from None


def _json_spans(data: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    for resource_spans in _list(data.get("resourceSpans")):
        for scope_spans in _list(resource_spans.get("scopeSpans")):
            yield from _list(scope_spans.get("spans"))


def _list(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ValueError("resourceSpans, scopeSpans and spans must be lists of objects")
    return value
