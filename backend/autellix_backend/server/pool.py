"""Engines behind the gateway: routing through the load balancer, health, in-flight calls.

Each call's output is pumped from its engine by a task the pool owns, so that when an engine
fails the pool can stop every call on it at once and each answers a clear 503, while calls
on the other engines go on. The pool also supervises engines: a failed one is probed and,
when its adapter can, restarted with backoff until it rejoins rotation (``supervision``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from autellix_backend.engines.base import EngineAdapter, EngineChunk, EngineError, EngineRequest
from autellix_backend.routing import EngineView, RouteRequest, make_balancer
from autellix_backend.server.errors import APIError, engine_unavailable
from autellix_backend.server.kv_feed import KVFeed
from autellix_backend.server.supervision import (
    EngineState,
    ReportsFailure,
    Restartable,
    RestartPolicy,
)

log = logging.getLogger("autellix.server.pool")

ABORT_TIMEOUT_S = 5.0


MAX_PROBE_TIMEOUTS = 3
"""Health probes in a row that may time out before an engine leaves rotation."""


@dataclass(slots=True, eq=False)
class EngineSlot:
    """One engine and the gateway's state about it."""

    adapter: EngineAdapter
    state: EngineState = EngineState.STARTING
    last_error: str | None = None
    """Why the engine last left rotation (kept after it comes back)."""
    last_error_at: float | None = None
    """Unix time of ``last_error``."""
    inflight: dict[str, CallStream] = field(default_factory=dict)
    num_probe_timeouts: int = 0
    """Health probes in a row that timed out (a busy engine answers late, a dead one never)."""
    num_restarts: int = 0
    """Times the engine came back into rotation after leaving it."""
    num_restart_attempts: int = 0
    """Restarts tried in the current run of failures (sets the backoff)."""
    healthy_since: float | None = None
    """Monotonic time the engine last entered rotation."""
    recovery: asyncio.Task[None] | None = None
    """The task bringing the engine back while it is out of rotation."""

    @property
    def engine_id(self) -> str:
        return self.adapter.engine_id

    @property
    def healthy(self) -> bool:
        """In rotation: the balancer may send it calls."""
        return self.state is EngineState.HEALTHY


_Item = EngineChunk | BaseException | None
"""What the pump hands on: a chunk, the error that ended the call, or None at its end."""


class _Handoff:
    """Items from the pump to the call's one reader, in order (``asyncio.Queue`` without its
    bound, task counting and many getters: a quarter of its work per item). A reader that
    waits for the call's end (``until_end``) is woken once by it, not by every chunk."""

    __slots__ = ("_items", "_until_end", "_waiter")

    def __init__(self) -> None:
        self._items: deque[_Item] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._until_end = False

    def put_nowait(self, item: _Item) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        if not self._until_end or not isinstance(item, EngineChunk):
            waiter.set_result(None)

    async def get(self) -> _Item:
        while not self._items:
            await self._wait()
        return self._items.popleft()

    async def until_end(self) -> list[_Item]:
        """Every item up to and with the end (None or an error), once the end has come."""
        self._until_end = True
        try:
            while not any(not isinstance(item, EngineChunk) for item in self._items):
                await self._wait()
        finally:
            self._until_end = False
        items = list(self._items)
        self._items.clear()
        return items

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None


class CallStream:
    """The output chunks of one call; iterate it, then ``aclose`` it."""

    def __init__(self, pool: EnginePool, slot: EngineSlot, request: EngineRequest) -> None:
        self.slot = slot
        self.request = request
        self._pool = pool
        self._queue = _Handoff()
        self._failed = False
        slot.inflight[request.request_id] = self
        self._task = asyncio.create_task(self._pump(), name=f"pump-{request.request_id}")

    async def __aiter__(self) -> AsyncIterator[EngineChunk]:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def next(self) -> EngineChunk | None:
        """The next chunk, or None at the end; raises the error that ended the call."""
        item = await self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    async def rest(self) -> tuple[list[EngineChunk], BaseException | None]:
        """The chunks still to come and the error that ended the call (None: it finished),
        once it has ended: one wake for them all, for a reader that needs the whole call."""
        chunks: list[EngineChunk] = []
        for item in await self._queue.until_end():
            if not isinstance(item, EngineChunk):
                return chunks, item
            chunks.append(item)
        raise AssertionError("until_end returned without the end")  # pragma: no cover

    def fail(self, error: APIError) -> None:
        """Stop the call with ``error`` (its engine left rotation)."""
        if not self._failed and not self._task.done():
            self._failed = True
            self._queue.put_nowait(error)
            self._task.cancel()

    def interrupt(self, error: Exception) -> None:
        """Raise ``error`` to the reader after the chunks already here (its client left)."""
        self._queue.put_nowait(error)

    def release_if_done(self) -> bool:
        """Release a call whose output has all come (nothing to cancel or abort) and return
        True; False while its engine request still runs (then ``aclose`` it)."""
        if not self._task.done():
            return False
        self.slot.inflight.pop(self.request.request_id, None)
        return True

    async def aclose(self, *, abort: bool) -> None:
        """Release the call; with ``abort`` the engine is told to drop it and free its cache."""
        self.slot.inflight.pop(self.request.request_id, None)
        if self._task.done():
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if abort:
            await self._pool.abort(self.slot, self.request.request_id)

    async def _pump(self) -> None:
        try:
            async for chunk in self.slot.adapter.generate(self.request):
                self._queue.put_nowait(chunk)
        except asyncio.CancelledError:
            return
        except EngineError as exc:
            error = engine_unavailable(f"engine {self.slot.engine_id} failed: {exc}")
            self._queue.put_nowait(error)
            self._pool.mark_failed(self.slot, str(exc), skip=self)
            return
        except ValueError as exc:
            param = getattr(exc, "param", None)  # RequestRejected names the field
            message = f"engine rejected the request: {exc}"
            self._queue.put_nowait(APIError(400, message, param=param, code="invalid_value"))
            return
        except Exception as exc:
            log.exception("engine %s raised while generating", self.slot.engine_id)
            self._queue.put_nowait(
                APIError(502, f"engine error: {exc}", type="server_error", code="bad_gateway")
            )
            return
        self._queue.put_nowait(None)


HealthHook = Callable[[EngineSlot], None]


class EnginePool:
    """Engines by id, a balancer over them, and a health loop."""

    def __init__(
        self,
        adapters: Sequence[EngineAdapter],
        *,
        balancer: str,
        health_interval_s: float = 5.0,
        health_timeout_s: float = 5.0,
        restart: RestartPolicy | None = None,
        on_health_change: HealthHook | None = None,
    ) -> None:
        self.slots = {a.engine_id: EngineSlot(a) for a in adapters}
        if len(self.slots) != len(adapters):
            raise ValueError("engine ids must be unique")
        self.balancer = make_balancer(balancer)
        self.kv_feed = KVFeed(self.balancer, adapters)
        self.health_interval_s = health_interval_s
        self.health_timeout_s = health_timeout_s
        self.restart_policy = restart or RestartPolicy()
        self._on_health_change = on_health_change
        self._supervising = False
        self._by_model: dict[str, list[EngineSlot]] = {}
        self._index_models()

    def _index_models(self) -> None:
        """Engines by the model they serve. An adapter may learn its model when it starts
        (an OpenAI-compatible server's first model), so this runs again then."""
        by_model: dict[str, list[EngineSlot]] = {}
        for slot in self.slots.values():
            if slot.adapter.model:
                by_model.setdefault(slot.adapter.model, []).append(slot)
        self._by_model = by_model

    @property
    def models(self) -> list[str]:
        return list(self._by_model)

    @property
    def num_inflight(self) -> int:
        return sum(len(s.inflight) for s in self.slots.values())

    def has_model(self, model: str) -> bool:
        return model in self._by_model

    # Routing -------------------------------------------------------------------

    def choose(
        self, model: str, program_id: str, prompt_tokens: int, block_hashes: Sequence[int]
    ) -> EngineSlot:
        """The engine for a call, by the balancer, among healthy engines serving ``model``."""
        slots = self._by_model[model]
        if not any(s.healthy for s in slots):
            raise engine_unavailable(f"no healthy engine serves model {model!r}")
        views = [EngineView(s.engine_id, len(s.inflight), s.healthy) for s in slots]
        route = RouteRequest(program_id, prompt_tokens, tuple(block_hashes))
        engine_id = self.balancer.choose(route, views)
        slot = self.slots[engine_id]
        if not slot.healthy:
            raise engine_unavailable(f"engine {engine_id} is out of rotation")
        return slot

    def open(self, slot: EngineSlot, request: EngineRequest) -> CallStream:
        return CallStream(self, slot, request)

    async def abort(self, slot: EngineSlot, request_id: str) -> None:
        try:
            await asyncio.wait_for(slot.adapter.abort(request_id), ABORT_TIMEOUT_S)
        except Exception as exc:
            log.warning("abort of %s on %s failed: %s", request_id, slot.engine_id, exc)

    # Health --------------------------------------------------------------------

    def mark_failed(self, slot: EngineSlot, reason: str, *, skip: CallStream | None = None) -> None:
        """Take ``slot`` out of rotation, fail its calls in flight with 503, and bring it back."""
        slot.last_error = reason
        slot.last_error_at = time.time()
        if slot.healthy:
            slot.state = EngineState.FAILED
            log.error("engine %s left rotation: %s", slot.engine_id, reason)
            self.kv_feed.clear(slot.engine_id)
            self._notify(slot)
        elif slot.state is EngineState.STARTING:
            slot.state = EngineState.FAILED
        error = engine_unavailable(f"engine {slot.engine_id} failed: {reason}")
        for stream in list(slot.inflight.values()):
            if stream is not skip:
                stream.fail(error)
        self._supervise(slot)

    def _mark_healthy(self, slot: EngineSlot) -> None:
        slot.num_probe_timeouts = 0
        if slot.healthy:
            return
        if slot.state in (EngineState.FAILED, EngineState.RESTARTING):
            slot.num_restarts += 1
        slot.state = EngineState.HEALTHY
        slot.healthy_since = time.monotonic()
        if slot not in self._by_model.get(slot.adapter.model, ()):
            self._index_models()  # it started late and has only now learned its model
        log.info("engine %s is in rotation", slot.engine_id)
        self._notify(slot)

    async def _probe(self, slot: EngineSlot) -> tuple[bool | None, str]:
        """One health probe: (True, "") healthy, (False, why) failed, (None, why) timed out."""
        failure = known_failure(slot.adapter)
        if failure is not None:
            return False, failure
        try:
            ok = await asyncio.wait_for(slot.adapter.health(), self.health_timeout_s)
        except TimeoutError:
            return None, "health check timed out"
        except Exception as exc:
            return False, f"health check raised {type(exc).__name__}: {exc}"
        return (True, "") if ok else (False, "health check failed")

    async def check(self, slot: EngineSlot) -> bool:
        """Probe one engine and update its rotation state.

        An engine that answers "unhealthy" or raises leaves rotation at once. One that only
        times out is busy as often as it is dead (a CPU engine under load answers its probe
        late), so it leaves after ``MAX_PROBE_TIMEOUTS`` timeouts in a row: a slow probe must
        not fail the calls the engine is serving.
        """
        ok, reason = await self._probe(slot)
        if ok is None:
            slot.num_probe_timeouts += 1
            if slot.healthy and slot.num_probe_timeouts < MAX_PROBE_TIMEOUTS:
                log.warning("health probe of %s timed out; keeping it in rotation", slot.engine_id)
                return True
            reason = f"health check timed out {slot.num_probe_timeouts} times in a row"
        if ok:
            self._mark_healthy(slot)
            return True
        self.mark_failed(slot, reason)
        return False

    async def check_all(self) -> None:
        """Probe the engines in rotation (the ones out of it are probed by their recovery)."""
        await asyncio.gather(*(self.check(s) for s in self.slots.values() if s.healthy))

    def watch(self) -> None:
        """Take out of rotation, without waiting for a probe, engines that know they died."""
        for slot in self.slots.values():
            if slot.healthy:
                failure = known_failure(slot.adapter)
                if failure is not None:
                    self.mark_failed(slot, failure)

    async def health_loop(self) -> None:
        """Probe every ``health_interval_s``; between probes, ``watch`` every few tenths of a
        second, so that a crashed in-process engine is out of rotation within about a second."""
        await asyncio.gather(self._probe_loop(), self._watch_loop())

    async def _probe_loop(self) -> None:
        while True:
            await asyncio.sleep(self.health_interval_s)
            await self.check_all()

    async def _watch_loop(self) -> None:
        interval = min(self.restart_policy.watch_interval_s, self.health_interval_s)
        while True:
            await asyncio.sleep(interval)
            self.watch()

    # Supervision ---------------------------------------------------------------

    def _supervise(self, slot: EngineSlot) -> None:
        """Start bringing ``slot`` back, unless that is under way or the pool is not running."""
        if not self._supervising or (slot.recovery is not None and not slot.recovery.done()):
            return
        stable_for = time.monotonic() - (slot.healthy_since or time.monotonic())
        if slot.healthy_since is not None and stable_for >= self.restart_policy.backoff_max_s:
            slot.num_restart_attempts = 0
        slot.recovery = asyncio.get_running_loop().create_task(
            self._recover(slot), name=f"recover-{slot.engine_id}"
        )

    async def _recover(self, slot: EngineSlot) -> None:
        """Probe the engine every health interval until it passes; restart it with backoff
        when its adapter can. Ends when the engine is back in rotation. ``last_error`` keeps
        why it left rotation, or why its last restart failed."""
        loop = asyncio.get_running_loop()
        restartable = isinstance(slot.adapter, Restartable)
        next_restart = loop.time() + self.restart_policy.delay(slot.num_restart_attempts)
        while True:
            wait = self.health_interval_s
            if restartable:
                wait = min(wait, max(0.0, next_restart - loop.time()))
            await asyncio.sleep(wait)
            ok, _ = await self._probe(slot)
            if not ok and restartable and loop.time() >= next_restart:
                restarted = await self._restart(slot)
                next_restart = loop.time() + self.restart_policy.delay(slot.num_restart_attempts)
                if not restarted:
                    continue
                ok, _ = await self._probe(slot)
            if ok:
                break
        self._mark_healthy(slot)

    async def _restart(self, slot: EngineSlot) -> bool:
        """One restart attempt; False (and the reason recorded) when it raised."""
        adapter = slot.adapter
        assert isinstance(adapter, Restartable)
        slot.num_restart_attempts += 1
        slot.state = EngineState.RESTARTING
        log.warning("restarting engine %s (attempt %d)", slot.engine_id, slot.num_restart_attempts)
        try:
            await asyncio.wait_for(adapter.restart(), self.restart_policy.start_timeout_s)
        except Exception as exc:
            self._record(slot, f"restart failed: {type(exc).__name__}: {exc}")
            log.error("engine %s did not restart: %s", slot.engine_id, exc)
            return False
        finally:
            slot.state = EngineState.FAILED
        return True

    @staticmethod
    def _record(slot: EngineSlot, reason: str) -> None:
        if reason != slot.last_error:
            slot.last_error = reason
            slot.last_error_at = time.time()

    # Life cycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Start every engine and begin supervising them; one that fails to start stays out
        of rotation and is retried with backoff."""
        results = await asyncio.gather(
            *(s.adapter.start() for s in self.slots.values()), return_exceptions=True
        )
        self._index_models()
        for slot, result in zip(self.slots.values(), results, strict=True):
            if isinstance(result, BaseException):
                self.mark_failed(slot, f"failed to start: {result}")
            else:
                await self.check(slot)
        if not any(s.healthy for s in self.slots.values()):
            errors = "; ".join(f"{s.engine_id}: {s.last_error}" for s in self.slots.values())
            raise RuntimeError(f"no engine started: {errors}")
        await self.kv_feed.start()
        self._supervising = True
        for slot in self.slots.values():
            if not slot.healthy:
                self._supervise(slot)

    async def drain(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` for calls in flight to finish."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while self.num_inflight and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)

    async def aclose(self) -> None:
        self._supervising = False
        self.kv_feed.stop()
        recoveries = [s.recovery for s in self.slots.values() if s.recovery is not None]
        for task in recoveries:
            task.cancel()
        for task in recoveries:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for slot in self.slots.values():
            for stream in list(slot.inflight.values()):
                stream.fail(engine_unavailable("the service is shutting down"))
        for slot in self.slots.values():
            slot.state = EngineState.STOPPED
            try:
                await slot.adapter.aclose()
            except Exception as exc:
                log.warning("closing engine %s failed: %s", slot.engine_id, exc)

    def _notify(self, slot: EngineSlot) -> None:
        if self._on_health_change is not None:
            self._on_health_change(slot)


def known_failure(adapter: EngineAdapter) -> str | None:
    """Why ``adapter``'s engine is known dead without I/O (``ReportsFailure``), else None."""
    if not isinstance(adapter, ReportsFailure):
        return None
    try:
        return adapter.failure()
    except Exception as exc:  # the hook must not break the health loop
        return f"liveness check raised {type(exc).__name__}: {exc}"
