"""Per-call overhead of an engine in a Ray actor against the same engine in process.

Both run a simulated engine with ``time_scale=0`` (steps cost no wall time), so the difference
is the actor call: request pickling, the streaming generator's items, the report. The actor
sends every chunk made since its last stream item in one item, so with ``time_scale=0`` a call
is one or two items; ``--time-scale 1`` spreads the chunks over real step times (about 11 ms
a token), as a GPU engine does, and the stream carries about one item per token.

    python benchmarks/scale_out/ray_overhead.py --calls 300 --max-tokens 16
    python benchmarks/scale_out/ray_overhead.py --calls 50 --max-tokens 16 --time-scale 1
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import time

import ray

from autellix_backend.engines.base import EngineAdapter, EngineRequest, ProgramTag, RequestKind
from autellix_backend.engines.ray_engine import NAMESPACE, RayEngine
from autellix_backend.engines.simulated import SimulatedEngine


async def _latencies(engine: EngineAdapter, calls: int, max_tokens: int) -> list[float]:
    await engine.start()
    out = []
    warmup = min(20, calls)
    for i in range(calls + warmup):
        request = EngineRequest(
            f"r{i}",
            RequestKind.COMPLETION,
            {"model": "sim", "prompt": "hello there", "max_tokens": max_tokens},
            ProgramTag(f"p{i % 10}", call_id=f"c{i}"),
            prompt_tokens=3,
        )
        start = time.perf_counter()
        async for _ in engine.generate(request):
            pass
        if i >= warmup:  # warm-up calls are not counted
            out.append(time.perf_counter() - start)
    await engine.aclose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--max-tokens", type=int, default=16)
    parser.add_argument("--time-scale", type=float, default=0.0)
    args = parser.parse_args()
    build = functools.partial(SimulatedEngine, engine_id="sim", time_scale=args.time_scale)
    local = asyncio.run(_latencies(build(), args.calls, args.max_tokens))
    ray.init(num_cpus=2, namespace=NAMESPACE, include_dashboard=False, log_to_driver=False)
    try:
        actor = RayEngine(engine_id="overhead", model="sim", build=build, resources={"CPU": 1})
        remote = asyncio.run(_latencies(actor, args.calls, args.max_tokens))
    finally:
        ray.shutdown()
    for name, values in (("in-process", local), ("ray actor", remote)):
        print(
            f"{name:>10}: median {statistics.median(values) * 1e3:.2f} ms, "
            f"p90 {statistics.quantiles(values, n=10)[-1] * 1e3:.2f} ms per call "
            f"({args.max_tokens} tokens, {args.max_tokens + 1} chunks)"
        )
    extra = statistics.median(remote) - statistics.median(local)
    print(
        f"overhead: {extra * 1e3:.2f} ms per call (median), time scale {args.time_scale}, "
        f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cpus"
    )


if __name__ == "__main__":
    main()
