"""OTLP/HTTP trace receiver: ``POST /v1/traces`` (protobuf or JSON, optionally gzipped)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from autellix_backend.server.otlp import decode_request, encode_response, ingest
from autellix_backend.server.schemas import ERROR_RESPONSES
from autellix_backend.server.state import Principal, State

router = APIRouter(prefix="/v1", tags=["OpenTelemetry"])

_REQUEST_BODY = {
    "required": True,
    "content": {
        "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
        "application/json": {"schema": {"type": "object"}},
    },
}


@router.post(
    "/traces",
    responses=ERROR_RESPONSES,
    summary="Receive OTLP spans",
    openapi_extra={"requestBody": _REQUEST_BODY},
    response_class=Response,
)
async def receive_traces(request: Request, state: State, owner: Principal) -> Response:
    """Place the front end's spans in the process table as DAG nodes, threads and edges."""
    content_type = request.headers.get("content-type", "")
    export = decode_request(
        await request.body(),
        content_type=content_type,
        content_encoding=request.headers.get("content-encoding", ""),
        max_bytes=state.config.limits.max_body_bytes,
    )
    result = ingest(export, state.programs, owner)
    state.metrics.spans.labels("placed").inc(result.num_placed)
    state.metrics.spans.labels("unplaced").inc(result.num_unplaced)
    body, media_type = encode_response(result, content_type=content_type)
    return Response(body, media_type=media_type)
