"""Fixtures: an in-memory span exporter, process-wide instrumentation, a real service."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import autellix_graph
from tests.graph._support import running_service


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


@pytest.fixture
def instrumented(
    provider: TracerProvider, exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> Iterator[InMemorySpanExporter]:
    """Process-wide instrumentation that only traces (no service), spans kept in memory."""
    for name in ("AUTELLIX_BASE_URL", "AUTELLIX_OTLP_ENDPOINT", "AUTELLIX_DISABLED"):
        monkeypatch.delenv(name, raising=False)
    autellix_graph.instrument(tracer_provider=provider)
    try:
        yield exporter
    finally:
        autellix_graph.uninstrument()


@pytest.fixture(scope="module")
def service() -> Iterator[str]:
    """Base URL of a real ``autellix serve`` (simulated engine) on 127.0.0.1."""
    with running_service() as url:
        yield url
