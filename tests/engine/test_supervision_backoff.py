"""The supervisor's restart loop on an engine that can restart itself but fails to at first:
restarts are spaced by the doubling backoff, a failed restart is the engine's last error, and
the engine rejoins rotation once a restart works. A simulated engine stands in for the vLLM
one (whose real crash and restart tests/engine/test_supervision.py covers), so this runs in
a second.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from autellix_backend.engines.simulated import SimulatedEngine
from autellix_backend.server.pool import EnginePool
from autellix_backend.server.supervision import EngineState, RestartPolicy

POLICY = RestartPolicy(backoff_s=0.05, backoff_max_s=0.2)


class FlakyRestartEngine(SimulatedEngine):
    """A simulated engine whose first ``num_bad`` restarts raise, as a missing file would."""

    def __init__(self, num_bad: int) -> None:
        super().__init__(engine_id="flaky", time_scale=0.0)
        self.num_bad = num_bad
        self.restarted_at: list[float] = []

    async def restart(self) -> None:
        self.restarted_at.append(asyncio.get_running_loop().time())
        if len(self.restarted_at) <= self.num_bad:
            raise RuntimeError("weights not found")
        self.recover()


@pytest.mark.asyncio
async def test_restarts_back_off_until_one_works() -> None:
    engine = FlakyRestartEngine(num_bad=3)
    pool = EnginePool([engine], balancer="round_robin", health_interval_s=0.02, restart=POLICY)
    await pool.start()
    loop = asyncio.create_task(pool.health_loop())
    slot = pool.slots["flaky"]
    try:
        engine.fail("segfault")
        async with asyncio.timeout(10):
            while slot.healthy:
                await asyncio.sleep(0.01)
            failed_error = slot.last_error
            while not slot.healthy:
                await asyncio.sleep(0.01)
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        await pool.aclose()

    assert failed_error == "health check failed"
    assert len(engine.restarted_at) == 4
    gaps = [b - a for a, b in zip(engine.restarted_at, engine.restarted_at[1:], strict=False)]
    # Each failed restart doubles the wait before the next, up to the cap.
    for attempt, gap in enumerate(gaps, start=1):
        assert gap >= POLICY.delay(attempt) - 0.005, (attempt, gaps)
    assert [POLICY.delay(n) for n in range(4)] == [0.05, 0.1, 0.2, 0.2]
    assert slot.num_restarts == 1 and slot.num_restart_attempts == 4
    assert slot.last_error == "restart failed: RuntimeError: weights not found"


@pytest.mark.asyncio
async def test_an_engine_that_cannot_restart_is_only_probed() -> None:
    """A plain simulated engine (like a remote one) has no ``restart``: it rejoins when its
    probe passes again, and is never closed and started by the supervisor."""
    engine = SimulatedEngine(engine_id="plain", time_scale=0.0)
    pool = EnginePool([engine], balancer="round_robin", health_interval_s=0.02, restart=POLICY)
    await pool.start()
    loop = asyncio.create_task(pool.health_loop())
    slot = pool.slots["plain"]
    try:
        engine.fail("network partition")
        async with asyncio.timeout(10):
            while slot.healthy:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.3)  # several probes and backoff periods
            assert slot.state is EngineState.FAILED and slot.num_restart_attempts == 0
            engine.recover()
            while not slot.healthy:
                await asyncio.sleep(0.01)
    finally:
        loop.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await loop
        await pool.aclose()
    assert slot.num_restarts == 1
