"""Tracer setup and the attributes of program, node and call spans."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.util.types import AttributeValue

from autellix_graph import protocol
from autellix_graph._dag import DagNode, NodeKind, ThreadInfo
from autellix_graph._settings import Settings
from autellix_graph._version import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

_log = logging.getLogger(__name__)

_OPENINFERENCE_KIND = {
    protocol.SPAN_KIND_PROGRAM: "AGENT",
    protocol.SPAN_KIND_NODE: "CHAIN",
    protocol.SPAN_KIND_LLM: "LLM",
    protocol.SPAN_KIND_TOOL: "TOOL",
    protocol.SPAN_KIND_INTERRUPT: "CHAIN",
}
_GEN_AI_OPERATION = {
    protocol.SPAN_KIND_PROGRAM: "invoke_agent",
    protocol.SPAN_KIND_LLM: "chat",
    protocol.SPAN_KIND_TOOL: "execute_tool",
}


def exporting_provider(endpoint: str, api_key: str | None) -> TracerProvider | None:
    """A tracer provider that batches spans to an OTLP/HTTP ``endpoint``; None if the exporter
    package is missing (then the middleware traces to the global provider)."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        _log.warning(
            "opentelemetry-exporter-otlp-proto-http is not installed; spans not exported to %s",
            endpoint,
        )
        return None
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    provider = TracerProvider(resource=Resource.create({"service.name": "autellix-graph"}))
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, headers=headers, timeout=5))
    )
    return provider


def make_tracer(
    settings: Settings, tracer_provider: trace.TracerProvider | None
) -> tuple[trace.Tracer, TracerProvider | None]:
    """The tracer to use and the provider this middleware owns (to flush and shut down)."""
    owned: TracerProvider | None = None
    if tracer_provider is None and settings.traces_endpoint is not None:
        owned = exporting_provider(settings.traces_endpoint, settings.api_key)
        tracer_provider = owned
    return trace.get_tracer("autellix_graph", __version__, tracer_provider), owned


def traceparent(span: trace.Span) -> str | None:
    """The W3C ``traceparent`` header naming ``span``, or None for a non-recording span."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


def common_attributes(kind: str, program_id: str) -> dict[str, AttributeValue]:
    """Attributes every span carries."""
    attributes: dict[str, AttributeValue] = {
        protocol.ATTR_SPAN_KIND: kind,
        protocol.ATTR_PROGRAM_ID: program_id,
        protocol.OPENINFERENCE_SESSION_ID: program_id,
        protocol.OPENINFERENCE_SPAN_KIND: _OPENINFERENCE_KIND[kind],
        protocol.GEN_AI_CONVERSATION_ID: program_id,
    }
    operation = _GEN_AI_OPERATION.get(kind)
    if operation is not None:
        attributes[protocol.GEN_AI_OPERATION_NAME] = operation
    return attributes


def program_attributes(program_id: str, graph_name: str) -> dict[str, AttributeValue]:
    attributes = common_attributes(protocol.SPAN_KIND_PROGRAM, program_id)
    attributes[protocol.ATTR_NODE_NAME] = graph_name
    return attributes


def thread_attributes(program_id: str, thread: ThreadInfo) -> dict[str, AttributeValue]:
    attributes = common_attributes(protocol.SPAN_KIND_NODE, program_id)
    attributes.update(
        {
            protocol.ATTR_THREAD_ID: thread.thread_id,
            protocol.ATTR_PARENT_THREAD_ID: thread.parent_thread_id,
            protocol.ATTR_NODE_ID: thread.thread_id,
            protocol.ATTR_NODE_NAME: thread.node_name,
            protocol.ATTR_SUPERSTEP: thread.superstep,
            protocol.OPENINFERENCE_GRAPH_NODE_ID: thread.thread_id,
            protocol.OPENINFERENCE_GRAPH_NODE_PARENT_ID: thread.parent_thread_id,
        }
    )
    return attributes


def node_attributes(program_id: str, node: DagNode, name: str | None) -> dict[str, AttributeValue]:
    """Attributes of an LLM-call, tool or interrupt span."""
    kind = {
        NodeKind.LLM: protocol.SPAN_KIND_LLM,
        NodeKind.TOOL: protocol.SPAN_KIND_TOOL,
        NodeKind.INTERRUPT: protocol.SPAN_KIND_INTERRUPT,
    }[node.kind]
    attributes = common_attributes(kind, program_id)
    attributes.update(
        {
            protocol.ATTR_THREAD_ID: node.thread_id,
            protocol.ATTR_NODE_ID: node.node_id,
            protocol.ATTR_PARENT_IDS: list(node.parent_ids),
            protocol.OPENINFERENCE_GRAPH_NODE_ID: node.node_id,
            protocol.OPENINFERENCE_GRAPH_NODE_PARENT_ID: node.thread_id,
        }
    )
    if node.kind is NodeKind.LLM:
        attributes[protocol.ATTR_CALL_ID] = node.node_id
        attributes[protocol.ATTR_LLM_PARENT_IDS] = list(node.llm_parent_ids)
    if name:
        attributes[protocol.ATTR_NODE_NAME] = name
        if node.kind is NodeKind.LLM:
            attributes[protocol.GEN_AI_REQUEST_MODEL] = name
        elif node.kind is NodeKind.TOOL:
            attributes[protocol.GEN_AI_TOOL_NAME] = name
    return attributes
