"""The tracing UI's cost to the gateway: throughput with 100 live programs, UI closed vs open.

    python benchmarks/bench_ui_overhead.py [--programs 100] [--seconds 15] [--rounds 2]

One real ``autellix serve`` process (two simulated engines stepping back to back, so the
gateway itself is the bottleneck) and, in a client process (aiohttp), ``--programs``
programs each issuing calls back to back. The UI is "open" as a browser tab on each view
would be, all at once: every second it reads ``/v1/ui/programs``, ``/v1/ui/program`` (one of
the programs) and ``/v1/ui/engines``. Phases alternate (closed, open, closed, open...) so
both see the same machine load; the figure is the ratio of calls per second, open over
closed (the issue's bar: >= 0.90).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import aiohttp
from bench_gateway import server, sim_engines

from autellix_protocol.headers import HEADER_PROGRAM_ID

BODY = {"model": "sim", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 16}
UI_PATHS = ("/v1/ui/programs", "/v1/ui/program", "/v1/ui/engines")


async def _program(client: aiohttp.ClientSession, program_id: str, until: float) -> list[float]:
    latencies = []
    headers = {HEADER_PROGRAM_ID: program_id}
    while time.perf_counter() < until:
        start = time.perf_counter()
        async with client.post("/v1/chat/completions", json=BODY, headers=headers) as response:
            response.raise_for_status()
            await response.read()
        latencies.append(time.perf_counter() - start)
    return latencies


async def _ui(client: aiohttp.ClientSession, program_id: str, until: float) -> int:
    reads = 0
    while time.perf_counter() < until:
        for path in UI_PATHS:
            params = {"program_id": program_id} if path == "/v1/ui/program" else {}
            async with client.get(path, params=params) as response:
                response.raise_for_status()
                await response.read()
            reads += 1
        await asyncio.sleep(1.0)
    return reads


async def phase(url: str, programs: int, seconds: float, ui_open: bool) -> tuple[float, float]:
    """Calls per second and median latency (ms) over one phase (aiohttp client)."""
    connector = aiohttp.TCPConnector(limit=programs + 4)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as client:
        until = time.perf_counter() + seconds
        tasks = [_program(client, f"bench-{i}", until) for i in range(programs)]
        ui = [_ui(client, "bench-0", until)] if ui_open else []
        results = await asyncio.gather(*tasks, *ui)
    latencies = [x for r in results[:programs] for x in r]
    return len(latencies) / seconds, statistics.median(latencies) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    closed: list[float] = []
    opened: list[float] = []
    with server({"engines": sim_engines(2, 0.0)}) as (url, _):
        asyncio.run(phase(url, args.programs, 3.0, False))  # warm up
        for _ in range(args.rounds):
            for ui_open, out in ((False, closed), (True, opened)):
                rate, p50 = asyncio.run(phase(url, args.programs, args.seconds, ui_open))
                out.append(rate)
                state = "open  " if ui_open else "closed"
                print(f"UI {state}: {rate:8.1f} calls/s   p50 {p50:7.1f} ms", flush=True)
        idle_ms = asyncio.run(ui_read_ms(url))
    ratio = statistics.mean(opened) / statistics.mean(closed)
    print(f"throughput with the UI open / closed: {ratio:.3f} ({args.programs} live programs)")
    print(
        f"one second of the UI open costs the idle gateway {idle_ms:.1f} ms "
        f"(its three reads, median of 20, with the tables and series the run left)"
    )


async def ui_read_ms(url: str) -> float:
    """Wall time of one round of the UI's three reads on an otherwise idle gateway."""
    rounds = []
    async with aiohttp.ClientSession(url) as client:
        for _ in range(20):
            start = time.perf_counter()
            for path in UI_PATHS:
                params = {"program_id": "bench-0"} if path == "/v1/ui/program" else {}
                async with client.get(path, params=params) as response:
                    response.raise_for_status()
                    await response.read()
            rounds.append((time.perf_counter() - start) * 1000)
    return statistics.median(rounds)


if __name__ == "__main__":
    main()
