"""Helpers shared by the middleware tests: read DAGs back from spans and from the service."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan

from autellix_graph import protocol
from examples._common import Shape, dag_shape, shape

__all__ = ["Shape", "shape"]


def attrs(span: ReadableSpan) -> Mapping[str, Any]:
    return span.attributes or {}


def spans_of_kind(spans: Iterable[ReadableSpan], kind: str) -> list[ReadableSpan]:
    return [s for s in spans if attrs(s).get(protocol.ATTR_SPAN_KIND) == kind]


def shape_from_spans(spans: Sequence[ReadableSpan]) -> Shape:
    """The LLM-call DAG the spans describe (call order = span start order), each call
    labelled by its task (``node[k]``, parallel tasks numbered) so that a join's exact
    parent set is compared, task by task."""
    llm = sorted(spans_of_kind(spans, protocol.SPAN_KIND_LLM), key=lambda s: s.start_time or 0)
    calls = [
        (
            str(attrs(s)[protocol.ATTR_CALL_ID]),
            str(attrs(s)[protocol.ATTR_THREAD_ID]),
            list(attrs(s).get(protocol.ATTR_LLM_PARENT_IDS, ())),
        )
        for s in llm
    ]
    return dag_shape(calls)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_service(**config: Any) -> Iterator[str]:
    """The real ``autellix serve`` app with the simulated engine, on a loopback port."""
    import uvicorn

    from autellix_backend.server.app import create_app
    from autellix_backend.server.config import EngineSpec, ServerConfig

    port = free_port()
    engine = EngineSpec(kind="sim", engine_id="sim-0", model="sim")
    settings = ServerConfig(port=port, engines=(engine,), **config)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the service did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
