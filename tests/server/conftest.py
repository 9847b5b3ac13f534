"""A real ``autellix serve`` app on 127.0.0.1, run by uvicorn in a background thread.

The server runs in its own thread and event loop, exactly as in production; tests talk HTTP
to it. ``LiveServer.run`` executes a function on the server's loop, which is how tests make
one simulated engine fail.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx
import pytest
import uvicorn

from autellix_backend.engines.simulated import SimulatedEngine
from autellix_backend.server import EngineSpec, Limits, ServerConfig, create_app
from autellix_backend.server.cli import http_protocol
from autellix_backend.server.engine_factory import build_engines


class LiveServer:
    """One service instance listening on a free loopback port."""

    def __init__(self, config: ServerConfig, *, port: int = 0) -> None:
        """``port`` 0 picks a free one; a given port lets a test bring a server back on it."""
        self.config = config
        self.engines = build_engines(config)
        self.app = create_app(config, engines=self.engines)
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", port))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(
            uvicorn.Config(
                self.app,
                http=http_protocol(),  # as ``autellix serve`` runs it
                log_level="warning",
                lifespan="on",
                timeout_graceful_shutdown=5,
                timeout_keep_alive=int(config.keep_alive_s),
            )
        )
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, name="autellix-test-server", daemon=True)

    def _main(self) -> None:
        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            await self._server.serve(sockets=[self._sock])

        asyncio.run(serve())

    def start(self, timeout: float = 60.0) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._thread.is_alive():
            if self._server.started:
                return self
            time.sleep(0.01)
        self.stop()
        raise RuntimeError("the test server did not start")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)

    def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Call ``fn(*args)`` on the server's event loop and return its result."""
        assert self._loop is not None

        async def call() -> Any:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(timeout=10)

    def engine(self, engine_id: str) -> SimulatedEngine:
        for engine in self.engines:
            if engine.engine_id == engine_id and isinstance(engine, SimulatedEngine):
                return engine
        raise KeyError(engine_id)

    def client(self, *, api_key: str | None = None, timeout: float = 30.0) -> httpx.Client:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def metric(self, name: str, **labels: str) -> float:
        """The value of one sample on ``/metrics`` (0 when absent)."""
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(f"{self.url}/metrics").text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(
                    sample.labels.get(k) == v for k, v in labels.items()
                ):
                    return float(sample.value)
        return 0.0


def sim_config(
    num_engines: int = 1,
    *,
    time_scale: float = 1.0,
    limits: Limits | None = None,
    api_keys: dict[str, str] | None = None,
    **settings: Any,
) -> ServerConfig:
    """Simulated engines (A100 cost model) at ``time_scale`` wall seconds per second."""
    engines: Sequence[EngineSpec] = tuple(
        EngineSpec(
            kind="sim", engine_id=f"sim-{i}", model="sim", options={"time_scale": time_scale}
        )
        for i in range(num_engines)
    )
    return ServerConfig(
        engines=tuple(engines),
        limits=limits or Limits(),
        api_keys=api_keys or {},
        **settings,
    ).validate()


@pytest.fixture
def serve() -> Iterator[Callable[[ServerConfig], LiveServer]]:
    """Start servers for one test; all are stopped at its end."""
    started: list[LiveServer] = []

    def start(config: ServerConfig) -> LiveServer:
        server = LiveServer(config).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    """A shared service with two simulated engines, no auth, default limits."""
    live = LiveServer(sim_config(2, health_interval_s=0.2)).start()
    yield live
    live.stop()
