"""Recovery time of a supervised in-process vLLM engine: SIGKILL its EngineCore process, time
until the pool has taken it out of rotation (detection) and until it is back in rotation
(recovery: backoff, a fresh engine load, a passing probe). Prints one line per run and the
medians. Uses the service's default supervision settings unless told otherwise.

    python benchmarks/bench_engine_recovery.py --runs 3
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import time

from autellix_backend.engines.local_vllm import LocalVLLMEngine
from autellix_backend.server.config import ServerConfig
from autellix_backend.server.pool import EnginePool, EngineSlot
from autellix_backend.server.supervision import RestartPolicy

ENGINE_ARGS = {
    "max_num_seqs": 2,
    "max_model_len": 1024,
    "block_size": 32,
    "kv_cache_memory_bytes": 4 * 2**20,
}
"""The small engine of tests/engine/conftest.py."""


async def _until(slot: EngineSlot, *, healthy: bool) -> None:
    while slot.healthy is not healthy:
        await asyncio.sleep(0.01)


async def main(runs: int, health_interval_s: float, backoff_s: float) -> None:
    engine = LocalVLLMEngine(engine_id="vllm-0", **ENGINE_ARGS)  # type: ignore[arg-type]
    pool = EnginePool(
        [engine],
        balancer="round_robin",
        health_interval_s=health_interval_s,
        restart=RestartPolicy(backoff_s=backoff_s),
    )
    started = time.monotonic()
    await pool.start()
    print(json.dumps({"first_start_s": round(time.monotonic() - started, 2)}), flush=True)
    loop = asyncio.create_task(pool.health_loop())
    slot = pool.slots["vllm-0"]
    detect: list[float] = []
    recover: list[float] = []
    try:
        for run in range(runs):
            (pid,) = engine.engine_core_pids()
            killed = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            await _until(slot, healthy=False)
            detect.append(time.monotonic() - killed)
            await _until(slot, healthy=True)
            recover.append(time.monotonic() - killed)
            print(
                json.dumps(
                    {
                        "run": run,
                        "detect_s": round(detect[-1], 2),
                        "recover_s": round(recover[-1], 2),
                        "last_error": slot.last_error,
                    }
                ),
                flush=True,
            )
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        await pool.aclose()
    print(
        json.dumps(
            {
                "runs": runs,
                "median_detect_s": round(statistics.median(detect), 2),
                "median_recover_s": round(statistics.median(recover), 2),
                "min_recover_s": round(min(recover), 2),
                "max_recover_s": round(max(recover), 2),
            }
        )
    )


if __name__ == "__main__":
    defaults = ServerConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--health-interval", type=float, default=defaults.health_interval_s)
    parser.add_argument("--backoff", type=float, default=defaults.restart_backoff_s)
    args = parser.parse_args()
    asyncio.run(main(args.runs, args.health_interval, args.backoff))
