"""Two gateways share two simulated engines on loopback, each owning half of the programs.

Clients may call either gateway: a call whose program another gateway owns is forwarded there,
so every program has exactly one row, in its owner's table, and both engines serve both
gateways' programs (each call carries its snapshot; the engines keep no table).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from autellix_backend.engines.simulated import SimulatedEngine
from autellix_backend.server import EngineSpec, ServerConfig
from autellix_backend.server.config import ShardingConfig
from autellix_backend.server.engine_host import create_engine_app
from autellix_backend.server.sharding import HEADER_FORWARDED, HashRing
from tests.server.conftest import LiveServer


def _local(urls: list[str]) -> dict[str, str]:
    """Headers that ask a gateway for its own row only (as a peer gateway's forward does)."""
    return {HEADER_FORWARDED: urls[0]}


class EngineHost:
    """``engine_host``'s app for one simulated engine, served by uvicorn in a thread."""

    def __init__(self, engine_id: str) -> None:
        engine = SimulatedEngine(engine_id=engine_id, model="sim", time_scale=0.05)
        self._sock = _bound_socket()
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(create_engine_app(engine), log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[self._sock])), daemon=True
        )

    def start(self) -> EngineHost:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "the engine host did not start"
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)


def _bound_socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _free_port() -> int:
    with _bound_socket() as sock:
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def fleet() -> Iterator[tuple[list[LiveServer], list[str]]]:
    """Two gateways, each configured with both gateways and both shared engines."""
    hosts = [EngineHost(f"shared-{i}").start() for i in range(2)]
    ports = [_free_port(), _free_port()]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    engines = tuple(
        EngineSpec(kind="remote_vllm", engine_id=f"shared-{i}", model="sim", url=h.url)
        for i, h in enumerate(hosts)
    )
    gateways = [
        LiveServer(
            ServerConfig(
                engines=engines,
                balancer="round_robin",  # sequential short calls: spread them over both
                health_interval_s=0.5,
                sharding=ShardingConfig(gateways=tuple(urls), self_url=url),
            ).validate(),
            port=port,
        ).start()
        for url, port in zip(urls, ports, strict=True)
    ]
    yield gateways, urls
    for gateway in gateways:
        gateway.stop()
    for host in hosts:
        host.stop()


def test_each_program_has_one_row_at_its_owner(
    fleet: tuple[list[LiveServer], list[str]],
) -> None:
    gateways, urls = fleet
    ring = HashRing(urls)
    programs = [f"shard-program-{i}" for i in range(16)]
    engines_used: set[str] = set()
    for i, program in enumerate(programs):
        entry = gateways[i % 2]  # clients call either gateway
        for call in range(2):
            response = httpx.post(
                f"{entry.url}/v1/completions",
                json={"model": "sim", "prompt": f"{program} says hi", "max_tokens": 4},
                headers={"X-Autellix-Program-Id": program, "X-Autellix-Call-Id": f"c{call}"},
                timeout=30,
            )
            assert response.status_code == 200, response.text
            assert response.json()["choices"][0]["text"]
            engines_used.add(response.headers["X-Autellix-Engine-Id"])
    owners = {ring.owner(p) for p in programs}
    assert owners == set(urls), "both gateways own some of the programs"
    assert engines_used == {"shared-0", "shared-1"}, "both engines serve the fleet"
    for program in programs:
        owner = urls.index(ring.owner(program))
        own = httpx.get(f"{urls[owner]}/v1/programs/{program}", headers=_local(urls), timeout=10)
        other = httpx.get(
            f"{urls[1 - owner]}/v1/programs/{program}", headers=_local(urls), timeout=10
        )
        assert own.status_code == 200 and own.json()["num_calls"] == 2
        assert own.json()["total_service"] > 0, "the shared engine's report reached the owner"
        assert other.status_code == 404, "no second row at the other gateway"
        forwarded = httpx.get(f"{urls[1 - owner]}/v1/programs/{program}", timeout=10)
        assert forwarded.status_code == 200 and forwarded.json()["num_calls"] == 2
        spoofed = {HEADER_FORWARDED: "http://not-a-gateway"}
        via_other = httpx.get(f"{urls[1 - owner]}/v1/programs/{program}", headers=spoofed)
        assert via_other.status_code == 200, "a client's own header does not skip forwarding"


def test_a_streamed_call_is_forwarded_whole(fleet: tuple[list[LiveServer], list[str]]) -> None:
    _, urls = fleet
    ring = HashRing(urls)
    program = next(f"stream-{i}" for i in range(100) if ring.owner(f"stream-{i}") == urls[1])
    with httpx.stream(
        "POST",
        f"{urls[0]}/v1/chat/completions",
        json={
            "model": "sim",
            "messages": [{"role": "user", "content": "hello"}],
            "max_tokens": 6,
            "stream": True,
        },
        headers={"X-Autellix-Program-Id": program},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line.startswith("data:")]
    assert lines[-1] == "data: [DONE]"
    assert len(lines) >= 3
    local = httpx.get(f"{urls[1]}/v1/programs/{program}", headers=_local(urls), timeout=10)
    assert local.status_code == 200


def test_an_unreachable_owner_is_a_503_naming_it(
    fleet: tuple[list[LiveServer], list[str]],
) -> None:
    gateways, urls = fleet
    dead = f"http://127.0.0.1:{_free_port()}"
    config = ServerConfig(
        engines=gateways[0].config.engines,
        sharding=ShardingConfig(gateways=(urls[0], dead), self_url=urls[0]),
    )
    ring = HashRing((urls[0], dead))
    program = next(f"lost-{i}" for i in range(100) if ring.owner(f"lost-{i}") == dead)
    alone = LiveServer(config.validate()).start()
    try:
        response = httpx.post(
            f"{alone.url}/v1/completions",
            json={"model": "sim", "prompt": "hi", "max_tokens": 2},
            headers={"X-Autellix-Program-Id": program},
            timeout=30,
        )
    finally:
        alone.stop()
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "gateway_unavailable"
