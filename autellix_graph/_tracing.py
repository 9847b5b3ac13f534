"""Tracer setup: the exporting provider the middleware owns, and trace context for headers.

What the spans say lives in ``_attributes``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, NoOpTracer, ProxyTracer
from opentelemetry.util.types import AttributeValue

from autellix_graph._settings import Settings
from autellix_graph._version import __version__

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

_log = logging.getLogger(__name__)

SERVICE_NAME = "autellix-graph"
"""``service.name`` of the exporting provider unless ``OTEL_SERVICE_NAME`` says otherwise."""
PROJECT_NAME_RESOURCE_ATTRIBUTE = "openinference.project.name"
"""Resource attribute Phoenix and Arize group traces by."""


def resource_attributes(
    project_name: str | None, environ: Mapping[str, str] | None = None
) -> dict[str, AttributeValue]:
    """Attributes of the exporting provider's resource. ``OTEL_SERVICE_NAME`` and
    ``OTEL_RESOURCE_ATTRIBUTES`` are merged in by the SDK; ours are only set when not given."""
    env = os.environ if environ is None else environ
    attributes: dict[str, AttributeValue] = {}
    if not env.get("OTEL_SERVICE_NAME"):
        attributes["service.name"] = SERVICE_NAME
    if project_name:
        attributes[PROJECT_NAME_RESOURCE_ATTRIBUTE] = project_name
    return attributes


def exporting_provider(
    endpoint: str, api_key: str | None, project_name: str | None = None
) -> TracerProvider | None:
    """A tracer provider that batches spans to an OTLP/HTTP ``endpoint``, its resource naming
    ``project_name``; None if the exporter package is missing (then the middleware traces to
    the global provider)."""
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
    provider = TracerProvider(resource=Resource.create(resource_attributes(project_name)))
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
        owned = exporting_provider(
            settings.traces_endpoint, settings.api_key, settings.project_name
        )
        tracer_provider = owned
    return trace.get_tracer("autellix_graph", __version__, tracer_provider), owned


def start_span(tracer: trace.Tracer, name: str) -> trace.Span:
    """``tracer.start_span(name)`` in the current context. With no tracer provider configured
    (the API's proxy tracer, nothing set globally) it is the current non-recording span, as
    the API's no-op tracer answers, without the tracer's call chain: the middleware's hooks
    then pay next to nothing for spans (``bench_graph_overhead.py``)."""
    if isinstance(tracer, NoOpTracer) or (
        isinstance(tracer, ProxyTracer)
        # What the proxy reads itself (``get_tracer_provider()`` costs an environment
        # lookup); if the API renames these, the defaults take the tracer's own path.
        and getattr(tracer, "_real_tracer", True) is None
        and getattr(trace, "_TRACER_PROVIDER", True) is None
    ):
        current = trace.get_current_span()
        if isinstance(current, NonRecordingSpan):
            return current
    return tracer.start_span(name)


def traceparent(span: trace.Span) -> str | None:
    """The W3C ``traceparent`` header naming ``span``, or None for a non-recording span."""
    ctx = span.get_span_context()
    if not ctx.is_valid:
        return None
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"
