"""Gateway benchmarks: per-call overhead, sustained throughput, 1,000 concurrent programs.

    python benchmarks/bench_gateway.py overhead   [--calls 500] [--no-peers] [--baseline SRC]
    python benchmarks/bench_gateway.py overhead-inproc [--calls 500]
    python benchmarks/bench_gateway.py throughput [--seconds 10] [--concurrency 64]
                                                  [--baseline SRC] [--rounds 1] [--no-peers]
    python benchmarks/bench_gateway.py programs   [--programs 1000] [--calls-per-program 3]

Every server is a real ``autellix serve`` process on 127.0.0.1 (JSON logs off), the client
another process. ``overhead`` compares, side by side, calling an OpenAI-compatible engine
directly (a simulated engine served by ``autellix serve --engine sim``, steps back to back)
with calling it through a gateway that fronts it (engine kind ``openai``): the difference is
the gateway's cost per call (admission into the process table, routing, relaying, one more
HTTP hop); when the Rust peer routers ``vllm-router`` and ``sglang-router`` (PyPI) are
installed, the same calls also go through each in front of the same engine, so their hops are
measured beside ours. ``throughput`` and ``programs`` drive a gateway with two in-process
simulated engines (``programs``: A100 cost model at ``--time-scale``, default 10x faster than
real); ``throughput`` also drives our gateway and each installed peer in front of the same
two simulated engine processes, in turns.

``--baseline SRC`` also runs the gateway of another checkout of this repository (say
``git worktree add /tmp/base <commit>``), from the same virtual environment, beside this one:
``overhead`` alternates calls between the two, ``throughput`` alternates rounds, so a change
is measured side by side under the same machine load.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx

AUTELLIX = str(Path(sys.executable).parent / "autellix")
BODY = {"model": "sim", "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(config: dict[str, Any], source: str | None = None) -> Iterator[tuple[str, int]]:
    """Run ``autellix serve`` with ``config`` (YAML is JSON); yield its URL and pid.

    ``source``: a checkout whose packages the server imports instead of the installed ones.
    """
    port = free_port()
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        json.dump({**config, "port": port, "log_level": "warning"}, f)
    env = dict(os.environ)
    if source is not None:
        root = Path(source).resolve()
        env["PYTHONPATH"] = os.pathsep.join(
            str(p) for p in (root / "backend", root, root / "integrations")
        )
    cmd = [AUTELLIX, "serve", "--config", f.name]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("server did not start")
            time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        os.unlink(f.name)


def sim_engines(n: int, time_scale: float) -> list[dict[str, Any]]:
    return [
        {"kind": "sim", "id": f"sim-{i}", "model": "sim", "options": {"time_scale": time_scale}}
        for i in range(n)
    ]


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def paired_latencies(urls: tuple[str, ...], calls: int) -> list[list[float]]:
    """Alternate calls between the URLs so that all see the same machine load."""
    out: list[list[float]] = [[] for _ in urls]
    clients = [httpx.Client(base_url=url, timeout=30) for url in urls]
    try:
        for i in range(calls + 50):
            for side, client in enumerate(clients):
                start = time.perf_counter()
                client.post("/v1/chat/completions", json=BODY).raise_for_status()
                if i >= 50:
                    out[side].append((time.perf_counter() - start) * 1000)
    finally:
        for client in clients:
            client.close()
    return out


PEERS = ("vllm-router", "sglang-router")
"""The peer routers (PyPI, Rust; ``pip install vllm-router sglang-router``): each is run in
front of the same engines as our gateway when its command is installed."""


def _peer_command(name: str, port: int, engine_urls: list[str]) -> list[str]:
    exe = str(Path(sys.executable).parent / name)
    if name == "vllm-router":
        cmd = [exe, "--host", "127.0.0.1", "--port", str(port), "--worker-urls", *engine_urls]
        return [*cmd, "--policy", "round_robin", "--log-level", "error"]
    cmd = [exe, "launch", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--worker-urls", *engine_urls, "--policy", "round_robin", "--log-level", "error"]
    return [*cmd, "--prometheus-host", "127.0.0.1", "--prometheus-port", str(free_port())]


def installed_peers(skip: bool) -> list[str]:
    found = [name for name in PEERS if (Path(sys.executable).parent / name).exists()]
    missing = [name for name in PEERS if name not in found]
    if skip:
        print("note: peers skipped (--no-peers)")
        return []
    if missing:
        print(f"note: {', '.join(missing)} not installed (pip install {' '.join(missing)})")
    return found


@contextlib.contextmanager
def peer_router(name: str, engine_urls: list[str]) -> Iterator[tuple[str, int]]:
    """Run the peer ``name`` in front of ``engine_urls``; yield its URL and pid once it
    answers a call."""
    port = free_port()
    cmd = _peer_command(name, port, engine_urls)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.post(f"{url}/v1/chat/completions", json=BODY).status_code == 200:
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{name} did not start")
            time.sleep(0.2)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def overhead(args: argparse.Namespace) -> None:
    peers = installed_peers(args.no_peers)
    with contextlib.ExitStack() as stack:
        engine_url, _ = stack.enter_context(server({"engines": sim_engines(1, 0.0)}))
        gateway = {
            "engines": [{"kind": "openai", "id": "direct", "model": "sim", "url": engine_url}]
        }
        hops = {"through the gateway": stack.enter_context(server(gateway))}
        if args.baseline:
            hops["through the baseline"] = stack.enter_context(server(gateway, args.baseline))
        for name in peers:
            hops[f"through {name}"] = stack.enter_context(peer_router(name, [engine_url]))
        urls = {"engine directly": engine_url, **{name: url for name, (url, _) in hops.items()}}
        cpu = {name: cpu_seconds(pid) for name, (_, pid) in hops.items()}
        results = dict(zip(urls, paired_latencies(tuple(urls.values()), args.calls), strict=True))
        total_calls = args.calls + 50
        cpu_ms = {
            name: (cpu_seconds(pid) - cpu[name]) / total_calls * 1000
            for name, (_, pid) in hops.items()
        }
    for name, ms in results.items():
        ms = sorted(ms)
        print(f"{name:22s} p50 {ms[len(ms) // 2]:7.2f} ms   p99 {ms[int(len(ms) * 0.99)]:7.2f} ms")
    direct = results.pop("engine directly")
    for name, through in results.items():
        diffs = sorted(t - d for d, t in zip(direct, through, strict=True))
        hop = name.removeprefix("through ").removeprefix("the ")
        print(
            f"{hop + ' overhead':22s} p50 {statistics.median(diffs):7.2f} ms"
            f"   p99 {diffs[int(len(diffs) * 0.99)]:7.2f} ms (paired differences);"
            f" its process's CPU {cpu_ms[name]:.3f} ms per call"
        )


async def _direct_engine_ms(calls: int) -> list[float]:
    """Latency of calling a simulated engine adapter in-process (no HTTP, no gateway)."""
    from autellix_backend.engines.base import EngineRequest, ProgramTag, RequestKind
    from autellix_backend.engines.simulated import SimulatedEngine

    engine = SimulatedEngine(engine_id="direct", model="sim", time_scale=0.0)
    await engine.start()
    out: list[float] = []
    try:
        for i in range(calls + 50):
            request = EngineRequest(
                request_id=f"r{i}",
                kind=RequestKind.CHAT,
                body=BODY,
                tag=ProgramTag(program_id=f"p{i}", call_id=f"c{i}"),
                prompt_tokens=2,
            )
            start = time.perf_counter()
            async for _ in engine.generate(request):
                pass
            if i >= 50:
                out.append((time.perf_counter() - start) * 1000)
    finally:
        await engine.aclose()
    return out


def overhead_inproc(args: argparse.Namespace) -> None:
    """The same in-process simulated engine called directly, and over HTTP through a gateway."""
    direct = sorted(asyncio.run(_direct_engine_ms(args.calls)))
    with server({"engines": sim_engines(1, 0.0)}) as (url, _), httpx.Client(base_url=url) as c:
        through: list[float] = []
        for i in range(args.calls + 50):
            start = time.perf_counter()
            c.post("/v1/chat/completions", json=BODY).raise_for_status()
            if i >= 50:
                through.append((time.perf_counter() - start) * 1000)
    through.sort()
    for name, ms in (("engine in-process", direct), ("HTTP through gateway", through)):
        print(f"{name:22s} p50 {ms[len(ms) // 2]:7.2f} ms   p99 {ms[int(len(ms) * 0.99)]:7.2f} ms")
    cost = through[len(through) // 2] - direct[len(direct) // 2]
    print(f"gateway + HTTP cost    p50 {cost:7.2f} ms")


async def _drive(url: str, seconds: float, concurrency: int) -> tuple[int, int]:
    done = errors = 0
    stop = time.monotonic() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, connector=connector) as session:

        async def worker() -> None:
            nonlocal done, errors
            body = {**BODY, "max_tokens": 8}
            while time.monotonic() < stop:
                async with session.post("/v1/chat/completions", json=body) as r:
                    await r.read()
                    if r.status == 200:
                        done += 1
                    else:
                        errors += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, errors


def throughput(args: argparse.Namespace) -> None:
    """Calls/s through the gateway with two simulated engines in its process; with peers
    installed, also through the gateway, vllm-router and sglang-router in front of the same
    two simulated engine processes (round robin), each in its turn within a round."""
    config = {"engines": sim_engines(2, 0.0), "balancer": "least_used"}
    sides = {"gateway": None} if not args.baseline else {"gateway": None, "baseline": args.baseline}
    peers = installed_peers(args.no_peers)
    with contextlib.ExitStack() as stack:
        servers = {name: stack.enter_context(server(config, src)) for name, src in sides.items()}
        if peers:
            urls = [stack.enter_context(server({"engines": sim_engines(1, 0.0)}))[0] for _ in "ab"]
            remote = [
                {"kind": "openai", "id": f"engine-{i}", "model": "sim", "url": url}
                for i, url in enumerate(urls)
            ]
            gateway = {"engines": remote, "balancer": "round_robin"}
            servers["gateway/2 proc"] = stack.enter_context(server(gateway))
            for name in peers:
                servers[f"{name}/2 proc"] = stack.enter_context(peer_router(name, urls))
        for url, _ in servers.values():
            asyncio.run(_drive(url, 2, args.concurrency))
        for round_ in range(args.rounds):
            for name, (url, pid) in servers.items():
                cpu = cpu_seconds(pid)
                done, errors = asyncio.run(_drive(url, args.seconds, args.concurrency))
                per_call = (cpu_seconds(pid) - cpu) / max(done, 1) * 1000
                print(
                    f"{name:20s} round {round_}: {done / args.seconds:8.1f} calls/s sustained "
                    f"({done} calls, {errors} errors, {args.concurrency} concurrent clients, "
                    f"{args.seconds:.0f} s, 8 output tokens each); its process's CPU "
                    f"{per_call:.3f} ms per call"
                )


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) the process ``pid`` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _programs(url: str, n: int, calls: int, round_: int) -> tuple[int, float, float]:
    """``n`` programs at once, each ``calls`` dependent calls then DELETE; aiohttp client, as
    httpx's connection pool spends more CPU than the server at 1,000 open connections."""
    errors = 0
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=n)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(url, connector=connector, timeout=timeout) as session:

        async def post(body: dict[str, Any], headers: dict[str, str]) -> bool:
            try:
                async with session.post("/v1/chat/completions", json=body, headers=headers) as r:
                    text = await r.text()
                    if r.status != 200:
                        print(f"HTTP {r.status}: {text[:200]}", file=sys.stderr)
                    return r.status == 200
            except aiohttp.ClientError as exc:
                print(f"client error: {exc!r}", file=sys.stderr)
                return False

        async def program(i: int) -> None:
            nonlocal errors
            pid = f"r{round_}-p{i}"
            start = time.perf_counter()
            parents = ""
            for c in range(calls):
                headers = {"X-Autellix-Program-Id": pid, "X-Autellix-Call-Id": f"c{c}"}
                if parents:
                    headers["X-Autellix-Parent-Ids"] = parents
                body = {**BODY, "max_tokens": 16, "messages": [{"role": "user", "content": pid}]}
                ok = await post(body, headers)
                errors += not ok
                parents = f"c{c}"
            latencies.append(time.perf_counter() - start)
            async with session.delete(f"/v1/programs/{pid}") as r:
                if r.status != 200:
                    print(f"DELETE HTTP {r.status}: {(await r.text())[:200]}", file=sys.stderr)
                    errors += 1

        await asyncio.gather(*(program(i) for i in range(n)))
    latencies.sort()
    return errors, latencies[len(latencies) // 2], latencies[-1]


def programs(args: argparse.Namespace) -> None:
    config = {"engines": sim_engines(2, args.time_scale), "limits": {"max_inflight_calls": 8192}}
    with server(config) as (url, pid):
        start_rss = rss_mib(pid)
        for round_ in range(args.rounds):
            t0 = time.perf_counter()
            errors, p50, worst = asyncio.run(
                _programs(url, args.programs, args.calls_per_program, round_)
            )
            health = httpx.get(f"{url}/healthz").json()
            print(
                f"round {round_}: {args.programs} concurrent programs x {args.calls_per_program} "
                f"calls in {time.perf_counter() - t0:5.1f} s, errors {errors}, program latency "
                f"p50 {p50:5.2f} s max {worst:5.2f} s, programs left in table "
                f"{health['num_programs']}, server RSS {rss_mib(pid):6.1f} MiB "
                f"(at start {start_rss:6.1f} MiB)"
            )


def raise_open_file_limit() -> None:
    """1,000 concurrent connections need more than the usual 1,024 descriptors per process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65_536)), hard))


def main() -> None:
    raise_open_file_limit()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("overhead")
    p.add_argument("--calls", type=int, default=500)
    p.add_argument("--no-peers", action="store_true", help="skip the peer routers")
    p.add_argument("--baseline", help="a checkout whose gateway runs beside this one")
    p = sub.add_parser("overhead-inproc")
    p.add_argument("--calls", type=int, default=500)
    p = sub.add_parser("throughput")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--baseline", help="a checkout whose gateway runs beside this one")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--no-peers", action="store_true", help="skip vllm-router and sglang-router")
    p = sub.add_parser("programs")
    p.add_argument("--programs", type=int, default=1000)
    p.add_argument("--calls-per-program", type=int, default=3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument(
        "--time-scale", type=float, default=0.1, help="wall seconds per simulated A100 second"
    )
    args = parser.parse_args()
    commands = {
        "overhead": overhead,
        "overhead-inproc": overhead_inproc,
        "throughput": throughput,
        "programs": programs,
    }
    commands[args.what](args)


if __name__ == "__main__":
    main()
