"""Capacity against the number of simulated engines, as Ray actors and in the gateway's process.

For each engine count N, one ``autellix serve`` process fronts N simulated engines, either as
Ray actors (``placement: ray``, on a local Ray instance this script starts with 8 logical CPUs)
or in the gateway's own process. An open-loop Poisson stream of one-call programs probes
arrival rates; a rate meets the target when the 90th percentile latency stays under
``--target`` times the latency of a call on an idle engine. Bisection between 0.5x and 1.5x
of N engines' ideal capacity (batch slots over idle latency) finds the highest rate that meets
it. Prints one line per (mode, N), writes the points as JSON and draws them against the
linear line (N times the one-engine capacity).

``--time-scale`` stretches simulated time so that 8 engines fit on a small machine: at 10 a
16-token call takes about 1.8 s, and 8 engines with 8 slots each stream about 560 items/s.

    python benchmarks/scale_out/ray_scaling.py --engines 1,2,4,6,8 --seconds 15 \\
        --out docs/benchmarks/figures/ray_scaling.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

PYTHON = sys.executable


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _gateway(
    mode: str, n: int, args: argparse.Namespace, tmp: Path, ray_address: str | None
) -> tuple[subprocess.Popen[bytes], str]:
    port = _port()
    engine: dict[str, Any] = {
        "kind": "sim",
        "model": "sim",
        "options": {"time_scale": args.time_scale, "max_num_seqs": args.slots},
    }
    if mode == "ray":
        engine |= {"placement": "ray", "resources": {"CPU": 1}}
    config: dict[str, Any] = {
        "port": port,
        "log_level": "warning",
        "balancer": "least_used",
        "engines": [{**engine, "id": f"{mode}{n}-{i}"} for i in range(n)],
    }
    if ray_address:
        config["ray_address"] = ray_address
    path = tmp / f"{mode}-{n}.yaml"
    path.write_text(yaml.safe_dump(config))
    cmd = [PYTHON, "-m", "autellix_backend", "serve", "-c", str(path)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            health = httpx.get(f"{url}/healthz", timeout=2)
            if health.status_code == 200 and health.json()["status"] == "ok":
                return proc, url
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"gateway for {mode} x{n} exited with {proc.returncode}")
        time.sleep(0.25)
    proc.kill()
    raise RuntimeError(f"gateway for {mode} x{n} did not start")


async def _probe(url: str, rate: float, seconds: float, tokens: int, cutoff: float) -> list[float]:
    """Latencies of the calls sent at ``rate``/s for ``seconds`` (inf: failed or over cutoff)."""
    rng = random.Random(int(rate * 1000))
    limits = httpx.Limits(max_connections=2000, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=url, timeout=cutoff, limits=limits) as client:

        async def one(i: int) -> float:
            start = time.monotonic()
            try:
                response = await client.post(
                    "/v1/completions",
                    json={"model": "sim", "prompt": "hello there", "max_tokens": tokens},
                    headers={"X-Autellix-Program-Id": f"p{rate:.3f}-{i}"},
                )
            except httpx.HTTPError:
                return float("inf")
            return time.monotonic() - start if response.status_code == 200 else float("inf")

        tasks = []
        t0 = time.monotonic()
        at = 0.0
        i = 0
        while True:
            at += rng.expovariate(rate)
            if at > seconds:
                break
            await asyncio.sleep(max(0.0, t0 + at - time.monotonic()))
            tasks.append(asyncio.create_task(one(i)))
            i += 1
        return list(await asyncio.gather(*tasks))


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))] if ordered else float("inf")


def _capacity(url: str, n: int, idle: float, args: argparse.Namespace) -> dict[str, Any]:
    ideal = n * args.slots / idle
    lo, hi = 0.5 * ideal, 1.5 * ideal
    verified = False
    probes = []
    for _ in range(args.probes):
        rate = (lo + hi) / 2
        latencies = asyncio.run(
            _probe(url, rate, args.seconds, args.tokens, cutoff=4 * args.target * idle)
        )
        p90 = _p90(latencies)
        ok = p90 <= args.target * idle
        probes.append({"rate": round(rate, 3), "p90_s": round(p90, 3), "ok": ok})
        if ok:
            lo, verified = rate, True
        else:
            hi = rate
    return {"capacity": lo, "verified": verified, "probes": probes}


def _idle_latency(url: str, tokens: int) -> float:
    values = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for i in range(6):
            start = time.monotonic()
            response = client.post(
                "/v1/completions",
                json={"model": "sim", "prompt": "hello there", "max_tokens": tokens},
                headers={"X-Autellix-Program-Id": f"idle-{i}"},
            )
            response.raise_for_status()
            values.append(time.monotonic() - start)
    return statistics.median(values[1:])


def _plot(points: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for mode, label, marker in (("ray", "Ray actors", "o"), ("local", "in process", "s")):
        mine = sorted((p for p in points if p["mode"] == mode), key=lambda p: p["engines"])
        if mine:
            xs = [p["engines"] for p in mine]
            ax.plot(xs, [p["capacity"] for p in mine], marker=marker, label=label)
    ones = [p["capacity"] for p in points if p["engines"] == 1]
    if ones:
        one = statistics.mean(ones)
        top = max(p["engines"] for p in points)
        ax.plot([1, top], [one, one * top], ls="--", lw=1, color="grey", label="linear (N x 1)")
    ax.set_xlabel("simulated engines")
    ax.set_ylabel("highest arrival rate meeting the target (calls/s)")
    ax.set_title("Scale-out: capacity against engines")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="1,2,4,6,8")
    parser.add_argument("--modes", default="ray,local")
    parser.add_argument("--seconds", type=float, default=15.0, help="arrivals per probe")
    parser.add_argument("--probes", type=int, default=4, help="bisection steps per point")
    parser.add_argument("--tokens", type=int, default=16, help="output tokens per call")
    parser.add_argument("--slots", type=int, default=8, help="max_num_seqs of each engine")
    parser.add_argument("--time-scale", type=float, default=10.0)
    parser.add_argument("--target", type=float, default=2.0, help="p90 / idle latency")
    parser.add_argument("--out", type=Path, default=Path("ray_scaling.json"))
    parser.add_argument("--plot-only", action="store_true", help="redraw --out's points")
    args = parser.parse_args()
    if args.plot_only:
        _plot(json.loads(args.out.read_text())["points"], args.out.with_suffix(".png"))
        return
    counts = [int(n) for n in args.engines.split(",")]
    modes = args.modes.split(",")
    ray_address = None
    if "ray" in modes:
        import ray

        context = ray.init(num_cpus=8, include_dashboard=False, log_to_driver=False)
        ray_address = context.address_info["gcs_address"]
    points: list[dict[str, Any]] = []
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    idle: float | None = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n in counts:
                for mode in modes:
                    proc, url = _gateway(mode, n, args, Path(tmp), ray_address)
                    try:
                        if idle is None:
                            idle = _idle_latency(url, args.tokens)
                            print(f"idle latency {idle:.3f} s ({mode} x{n})", flush=True)
                        point = {"mode": mode, "engines": n, **_capacity(url, n, idle, args)}
                    finally:
                        proc.terminate()
                        proc.wait(timeout=60)
                    point["load"] = round(os.getloadavg()[0], 1)
                    points.append(point)
                    print(
                        f"{mode:>5} engines={n} capacity={point['capacity']:.2f} calls/s "
                        f"verified={point['verified']} load={point['load']} "
                        f"probes={point['probes']}",
                        flush=True,
                    )
    finally:
        if ray_address:
            import ray

            ray.shutdown()
    result = {
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "idle_latency_s": idle,
        "cpus": os.cpu_count(),
        "load_before": round(load_before, 1),
        "minutes": round((time.monotonic() - started) / 60, 1),
        "points": points,
    }
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    _plot(points, args.out.with_suffix(".png"))
    for mode in modes:
        mine = {p["engines"]: p["capacity"] for p in points if p["mode"] == mode}
        if 1 in mine:
            ratios = ", ".join(f"{n}: {c / mine[1]:.2f}" for n, c in sorted(mine.items()))
            print(f"{mode}: capacity / one engine's = {ratios}")


if __name__ == "__main__":
    main()
