"""Engines as Ray actors: placed by Ray on a cluster's nodes, called without an HTTP hop.

The gateway keeps the one process table and the balancer; each engine (a simulated engine, or
vLLM's ``AsyncLLM`` with the Autellix plugin) runs inside an ``EngineActor`` that Ray places by
its resources (``{"GPU": 1}``, ``{"CPU": 1}``). A call is one actor method call whose streaming
generator yields the engine's chunks; the ``EngineRequest`` it carries holds the call's tag and
its program snapshot, and the last chunk's usage carries the service report back. Snapshot
refreshes of waiting calls are one-way actor calls.

Failure: when the actor dies, its streams raise, the gateway fails the engine's calls in flight
with 503 ``engine_unavailable`` and takes it out of rotation; Ray restarts the actor
(``max_restarts``), the fresh actor builds its engine on the first probe, and the probe that
passes puts it back in rotation. Actors are named (``autellix-<engine id>`` in namespace
``autellix``), so several gateways on one cluster share them.

Ray is optional (``pip install 'autellix[ray]'``); this module imports it only when used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

from autellix_backend.engines.base import (
    EngineAdapter,
    EngineChunk,
    EngineError,
    EngineLoad,
    EngineRequest,
)
from autellix_protocol.snapshot import ProgramSnapshot

log = logging.getLogger("autellix.engines.ray")

NAMESPACE = "autellix"
"""Ray namespace of the engine actors (named ``autellix-<engine id>``)."""
RAY_MISSING = (
    "engines with placement 'ray' need Ray, which is not installed. Install it with "
    "\"pip install 'autellix[ray]'\"."
)

EngineBuilder = Any
"""A picklable ``() -> EngineAdapter`` the actor calls to build its engine."""


class EngineActor:
    """The actor's body: one engine adapter, built inside the actor's process on first use."""

    def __init__(self, build: EngineBuilder) -> None:
        self._build = build
        self._engine: EngineAdapter | None = None
        self._starting: asyncio.Lock | None = None
        self._pumps: dict[str, asyncio.Task[None]] = {}
        """Request id -> the task running that call in the engine."""

    async def _ready(self) -> EngineAdapter:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._engine is None:
                engine = self._build()
                await engine.start()
                self._engine = engine
        return self._engine

    async def health(self) -> bool:
        return await (await self._ready()).health()

    async def load(self) -> tuple[int, int]:
        load = (await self._ready()).load()
        return load.num_running, load.num_waiting

    async def num_streams(self) -> int:
        """Calls whose stream is open in this actor (0 when idle; a leak shows here)."""
        return len(self._pumps)

    async def model(self) -> str:
        return (await self._ready()).model

    async def generate(self, request: EngineRequest) -> AsyncIterator[list[EngineChunk]]:
        """Yield the chunks in batches: each yield holds every chunk made since the last one.

        One Ray stream item costs about 1-2 ms (an object store entry and a report to the
        caller), so a chunk per item would dominate short calls; the engine runs in a task
        that fills a queue, and each item takes what the queue holds when the last one left.
        """
        engine = await self._ready()
        queue: asyncio.Queue[EngineChunk | BaseException | None] = asyncio.Queue()

        async def pump() -> None:
            try:
                async for chunk in engine.generate(request):
                    queue.put_nowait(chunk)
            except Exception as exc:  # re-raised in the stream, where the caller sees it
                queue.put_nowait(exc)
            finally:
                queue.put_nowait(None)

        task = asyncio.create_task(pump())
        self._pumps[request.request_id] = task
        try:
            done = False
            while not done:
                items = [await queue.get()]
                while not queue.empty():
                    items.append(queue.get_nowait())
                batch: list[EngineChunk] = []
                for item in items:
                    if item is None:
                        done = True
                    elif isinstance(item, BaseException):
                        if batch:
                            yield batch
                        raise item
                    else:
                        batch.append(item)
                if batch:
                    yield batch
        finally:
            self._pumps.pop(request.request_id, None)
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def abort(self, request_id: str) -> None:
        """Abort in the engine, and end the call's stream (an engine may leave it open)."""
        await (await self._ready()).abort(request_id)
        task = self._pumps.get(request_id)
        if task is not None:
            task.cancel()

    async def refresh(self, program_id: str, snapshot: ProgramSnapshot) -> None:
        if self._engine is not None:
            self._engine.refresh(program_id, snapshot)

    async def end_program(self, program_id: str) -> None:
        if self._engine is not None:
            self._engine.end_program(program_id)

    async def kv_usage(self) -> float | None:
        """The engine's KV cache usage (0..1), None when it does not say."""
        usage = getattr(self._engine, "kv_usage", None)
        return usage() if usage is not None else None

    async def pid(self) -> int:
        import os

        return os.getpid()

    async def placement(self) -> dict[str, Any]:
        """Where Ray put this actor: its node, placement group and GPU ids."""
        import ray

        context = ray.get_runtime_context()
        return {
            "node_id": context.get_node_id(),
            "placement_group_id": context.get_placement_group_id(),
            "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
            "resources": context.get_assigned_resources(),  # type: ignore[no-untyped-call]
        }


class ReplicaGroup:
    """A Ray placement group that the replicas of one engine entry share, a bundle each.

    Created once, by the first replica to start, as a named group (``autellix-<engine id>``
    in namespace ``autellix``) so that other gateways on the cluster reuse it. A bundle always
    lies on one node, so a tensor-parallel replica's GPUs are on one node; the strategy places
    the bundles (``PACK``: few nodes; ``SPREAD``: many; ``STRICT_*``: or fail).

    Args:
        name: the group's name on the cluster.
        bundles: resources of each replica's bundle (``{"CPU": 1, "GPU": 2}``).
        strategy: Ray's placement strategy.
        timeout: seconds to wait for the cluster to reserve the bundles (an autoscaler may
            add nodes meanwhile).
    """

    def __init__(
        self,
        *,
        name: str,
        bundles: list[dict[str, float]],
        strategy: str = "PACK",
        timeout: float = 600.0,
    ) -> None:
        self.name = name
        self.bundles = [dict(b) for b in bundles]
        self.strategy = strategy
        self.timeout = timeout
        self._group: Any = None
        self._lock = asyncio.Lock()

    async def ready(self) -> Any:
        """The placement group, its bundles reserved; raises ``EngineError`` past the timeout."""
        async with self._lock:
            if self._group is None:
                ray = _ray()
                from ray.util import placement_group
                from ray.util.placement_group import get_placement_group

                try:
                    group = get_placement_group(self.name)
                except ValueError:
                    group = placement_group(self.bundles, strategy=self.strategy, name=self.name)
                try:
                    await asyncio.wait_for(group.ready(), self.timeout)
                except TimeoutError:
                    raise EngineError(
                        f"placement group {self.name}: Ray could not reserve {self.bundles} "
                        f"({self.strategy}) within {self.timeout:.0f} s; the cluster has "
                        f"{ray.available_resources()} free"
                    ) from None
                self._group = group
            return self._group


class RayEngine(EngineAdapter):
    """An engine adapter that runs its engine in a Ray actor.

    Args:
        engine_id: name in the gateway (and of the actor: ``autellix-<engine_id>``).
        model: model name clients ask for.
        build: picklable ``() -> EngineAdapter``, run inside the actor.
        program_aware: whether the inner engine schedules with the Autellix core.
        resources: what the actor needs: ``CPU``, ``GPU`` and custom resources.
        max_restarts: times Ray restarts a dead actor (-1: forever).
        address: Ray cluster to join (``auto``, ``ray://head:10001``); None uses the one this
            process already joined, or starts a local one.
        timeout: seconds to wait for a probe or an abort.
        group: placement group shared with the other replicas of this engine entry.
        bundle_index: this replica's bundle in ``group``.
    """

    def __init__(
        self,
        *,
        engine_id: str,
        model: str,
        build: EngineBuilder,
        program_aware: bool = True,
        resources: Mapping[str, float] | None = None,
        max_restarts: int = -1,
        address: str | None = None,
        timeout: float = 10.0,
        group: ReplicaGroup | None = None,
        bundle_index: int = 0,
    ) -> None:
        self.engine_id = engine_id
        self.model = model
        self.program_aware = program_aware
        self.resources = dict(resources or {"CPU": 1})
        self.max_restarts = max_restarts
        self.address = address
        self.timeout = timeout
        self.group = group
        self.bundle_index = bundle_index
        self._build = build
        self._actor: Any = None
        self._live: dict[str, str] = {}
        """Request id -> program id of the calls in flight here."""

    @property
    def actor(self) -> Any:
        """The Ray actor handle (after ``start``)."""
        if self._actor is None:
            raise EngineError(f"engine {self.engine_id} is not started")
        return self._actor

    async def start(self) -> None:
        ray = _ray()
        if not ray.is_initialized():
            ray.init(address=self.address, namespace=NAMESPACE, ignore_reinit_error=True)
        resources = dict(self.resources)
        placement: dict[str, Any] = {}
        if self.group is not None:
            from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

            placement["scheduling_strategy"] = PlacementGroupSchedulingStrategy(
                placement_group=await self.group.ready(),
                placement_group_bundle_index=self.bundle_index,
                placement_group_capture_child_tasks=True,
            )
        cls = ray.remote(EngineActor).options(
            name=f"autellix-{self.engine_id}",
            namespace=NAMESPACE,
            get_if_exists=True,
            max_restarts=self.max_restarts,
            max_task_retries=0,
            num_cpus=resources.pop("CPU", 0),
            num_gpus=resources.pop("GPU", 0),
            resources=resources or None,
            max_concurrency=10_000,
            **placement,
        )
        self._actor = cls.remote(self._build)
        # the actor builds its engine now, inside start's generous timeout, not in a probe
        self.model = await self._call(self._actor.model.remote()) or self.model

    async def aclose(self) -> None:
        self._actor = None

    async def health(self) -> bool:
        if self._actor is None:
            return False
        try:
            return bool(
                await asyncio.wait_for(self._call(self._actor.health.remote()), self.timeout)
            )
        except (EngineError, TimeoutError):
            return False

    def load(self) -> EngineLoad:
        return EngineLoad(num_running=len(self._live))

    async def generate(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        ray = _ray()
        self._live[request.request_id] = request.tag.program_id
        try:
            stream = self.actor.generate.options(num_returns="streaming").remote(request)
            async for ref in stream:
                for chunk in await self._call(ref):
                    yield chunk
        except ray.exceptions.RayError as exc:
            raise EngineError(f"engine {self.engine_id} (Ray actor) failed: {exc}") from exc
        finally:
            self._live.pop(request.request_id, None)

    async def abort(self, request_id: str) -> None:
        self._live.pop(request_id, None)
        if self._actor is not None:
            try:
                await asyncio.wait_for(
                    self._call(self._actor.abort.remote(request_id)), self.timeout
                )
            except (EngineError, TimeoutError):
                log.warning("engine %s: abort of %s not delivered", self.engine_id, request_id)

    def refresh(self, program_id: str, snapshot: ProgramSnapshot) -> None:
        """Send the new snapshot only when the program has a call waiting here (one-way)."""
        if self._actor is not None and program_id in self._live.values():
            self._actor.refresh.remote(program_id, snapshot)

    def end_program(self, program_id: str) -> None:
        """Pass the program's end on to the actor's engine (one-way), which releases the KV
        it holds for the program."""
        if self._actor is not None:
            self._actor.end_program.remote(program_id)

    async def _call(self, ref: Any) -> Any:
        """Await an object ref; Ray's errors other than the call's own become ``EngineError``."""
        ray = _ray()
        try:
            return await ref
        except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError) as exc:
            raise EngineError(f"engine {self.engine_id} (Ray actor) is unavailable: {exc}") from exc
        except ray.exceptions.RayTaskError as exc:
            cause = exc.as_instanceof_cause()
            if isinstance(cause, EngineError):
                raise EngineError(str(cause)) from exc
            if isinstance(cause, ValueError):
                raise cause from None  # the engine rejected this request (a 400, not a failure)
            raise EngineError(f"engine {self.engine_id} failed: {cause}") from exc


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise EngineError(RAY_MISSING) from exc
    return ray
