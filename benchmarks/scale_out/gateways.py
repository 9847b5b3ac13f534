"""Calls/s through 1, 2 and 4 sharded gateways sharing two simulated engines, on loopback.

Every gateway and engine is its own process (``autellix serve`` and
``python -m autellix_backend.server.engine_host``); clients call a random gateway, so with N
gateways (N-1)/N of the calls are forwarded once to their program's owner. Each program makes
``--calls-per-program`` calls. Prints calls/s per gateway count and the ratio to one gateway.

    python benchmarks/scale_out/gateways.py --gateways 1,2,4 --seconds 15
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

PYTHON = sys.executable


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(url: str) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{url} did not start")


def _start_fleet(
    num_gateways: int, engine_urls: list[str], tmp: Path
) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    """Start ``num_gateways`` gateways sharing ``engine_urls``; their processes and URLs."""
    ports = [_port() for _ in range(num_gateways)]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    procs = []
    for port, url in zip(ports, urls, strict=True):
        config = {
            "port": port,
            "log_level": "warning",
            "balancer": "least_used",
            "engines": [
                {"kind": "remote_vllm", "id": f"shared-{i}", "model": "sim", "url": u}
                for i, u in enumerate(engine_urls)
            ],
        }
        if num_gateways > 1:
            config["sharding"] = {"gateways": urls, "self_url": url}
        path = tmp / f"gateway-{port}.yaml"
        path.write_text(yaml.safe_dump(config))
        cmd = [PYTHON, "-m", "autellix_backend", "serve", "-c", str(path)]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    for url in urls:
        _wait(url)
    return procs, urls


async def _load(
    urls: list[str], seconds: float, concurrency: int, calls_per_program: int
) -> tuple[int, int]:
    done = errors = 0
    programs = itertools.count()
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency * 2)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def worker() -> None:
            nonlocal done, errors
            while time.monotonic() < deadline:
                program = f"bench-{os.getpid()}-{next(programs)}"
                for call in range(calls_per_program):
                    url = random.choice(urls)
                    try:
                        response = await client.post(
                            f"{url}/v1/completions",
                            json={"model": "sim", "prompt": "hello there", "max_tokens": 4},
                            headers={
                                "X-Autellix-Program-Id": program,
                                "X-Autellix-Call-Id": f"c{call}",
                            },
                        )
                        if response.status_code == 200:
                            done += 1
                        else:
                            errors += 1
                            print(f"error {response.status_code}: {response.text[:200]}")
                    except httpx.HTTPError as exc:
                        errors += 1
                        print(f"error: {type(exc).__name__}: {exc}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateways", default="1,2,4")
    parser.add_argument("--engines", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--calls-per-program", type=int, default=4)
    args = parser.parse_args()
    engine_ports = [_port() for _ in range(args.engines)]
    engines = [
        subprocess.Popen(
            [
                PYTHON,
                "-m",
                "autellix_backend.server.engine_host",
                "--port",
                str(p),
                "--engine-id",
                f"shared-{i}",
                "--time-scale",
                "0",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i, p in enumerate(engine_ports)
    ]
    engine_urls = [f"http://127.0.0.1:{p}" for p in engine_ports]
    base = None
    try:
        for url in engine_urls:
            _wait(url)
        with tempfile.TemporaryDirectory() as tmp:
            for n in (int(g) for g in args.gateways.split(",")):
                procs, urls = _start_fleet(n, engine_urls, Path(tmp))
                try:
                    asyncio.run(_load(urls, 2.0, args.concurrency, args.calls_per_program))
                    done, errors = asyncio.run(
                        _load(urls, args.seconds, args.concurrency, args.calls_per_program)
                    )
                finally:
                    for proc in procs:
                        proc.terminate()
                    for proc in procs:
                        proc.wait(timeout=30)
                rate = done / args.seconds
                base = base or rate
                print(
                    f"gateways={n} calls/s={rate:.0f} ratio={rate / base:.2f} errors={errors} "
                    f"cpus={os.cpu_count()} load={os.getloadavg()[0]:.1f}",
                    flush=True,
                )
    finally:
        for engine in engines:
            engine.terminate()
        for engine in engines:
            engine.wait(timeout=30)


if __name__ == "__main__":
    main()
