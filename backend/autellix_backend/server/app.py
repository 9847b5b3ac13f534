"""The FastAPI app of ``autellix serve``: parts wired together, background loops, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from autellix_backend.core import ProgramRecord
from autellix_backend.engines.base import EngineAdapter
from autellix_backend.server.auth import KeyRing
from autellix_backend.server.config import ServerConfig
from autellix_backend.server.engine_factory import build_engines
from autellix_backend.server.errors import install_error_handlers
from autellix_backend.server.gateway import Gateway
from autellix_backend.server.metrics import ServiceMetrics
from autellix_backend.server.middleware import (
    BodyLimitMiddleware,
    RequestCounter,
    RequestCountMiddleware,
)
from autellix_backend.server.pool import EnginePool, EngineSlot
from autellix_backend.server.programs import ProgramRegistry, Session
from autellix_backend.server.routes import completions, operations, programs, traces, ui
from autellix_backend.server.sharding import ShardRouter
from autellix_backend.server.state import ServiceState
from autellix_backend.server.supervision import RestartPolicy
from autellix_backend.server.ui_recorder import UiRecorder
from autellix_protocol.snapshot import ProgramSnapshot

log = logging.getLogger("autellix.server")


def create_app(
    config: ServerConfig | None = None, *, engines: Sequence[EngineAdapter] | None = None
) -> AutellixApp:
    """Build the service; ``engines`` replaces the ones ``config`` describes (for embedding)."""
    config = (config or ServerConfig()).validate()
    adapters = list(engines) if engines is not None else build_engines(config)
    metrics = ServiceMetrics()

    def on_program_end(session: Session, program: ProgramRecord) -> None:
        metrics.program_latency.observe(max(0.0, registry.clock() - program.start_time))
        pool.balancer.on_program_finished(session.key)
        for slot in pool.slots.values():
            slot.adapter.end_program(session.key)

    def on_health_change(slot: EngineSlot) -> None:
        if not slot.healthy:
            metrics.engine_failures.labels(slot.engine_id).inc()

    registry = ProgramRegistry(
        config.policy, config.limits, idle_timeout_s=config.idle_timeout_s, on_end=on_program_end
    )
    pool = EnginePool(
        adapters,
        balancer=config.balancer,
        health_interval_s=config.health_interval_s,
        health_timeout_s=config.health_timeout_s,
        restart=RestartPolicy(
            backoff_s=config.restart_backoff_s, backoff_max_s=config.restart_backoff_max_s
        ),
        on_health_change=on_health_change,
    )
    registry.tracker.subscribe(functools.partial(_push_snapshot, pool))
    scheduler_config = config.scheduler
    metrics.watch(registry, pool, scheduler_config)
    recorder = UiRecorder(registry, pool, metrics, scheduler_config.lower_bounds())
    state = ServiceState(
        config=config,
        keys=KeyRing(config.api_keys),
        programs=registry,
        pool=pool,
        gateway=Gateway(config, registry, pool, metrics),
        metrics=metrics,
        ui=recorder,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool.start()
        loops = [
            asyncio.create_task(pool.health_loop(), name="health"),
            asyncio.create_task(_reap_loop(registry, config.idle_timeout_s), name="reaper"),
            asyncio.create_task(recorder.run(), name="ui-recorder"),
        ]
        log.info(
            "service ready",
            extra={
                "engines": ",".join(pool.slots),
                "policy": config.policy,
                "auth": bool(config.api_keys),
            },
        )
        try:
            yield
        finally:
            log.info("shutting down", extra={"inflight_calls": pool.num_inflight})
            for task in loops:
                task.cancel()
            for task in loops:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await pool.drain(config.shutdown_grace_s)
            await pool.aclose()

    app = AutellixApp(
        title="Autellix",
        version=_version(),
        summary="Program-aware, OpenAI-compatible LLM serving for agentic programs.",
        lifespan=lifespan,
    )
    app.state.autellix = state
    install_error_handlers(app)
    if config.sharding.gateways:  # inside the body limit: a forwarded body is bounded too
        app.add_middleware(
            ShardRouter, gateways=config.sharding.gateways, self_url=config.sharding.self_url
        )
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.limits.max_body_bytes)
    requests = RequestCounter(metrics.requests)
    app.add_middleware(RequestCountMiddleware, counter=requests)
    for module in (completions, programs, traces, operations, ui):
        app.include_router(module.router)
    app.include_router(ui.page)
    app.router.routes[0:0] = completions.fast_routes(app.router.routes)
    if not config.sharding.gateways:  # a sharded gateway forwards others' programs first
        app.front = completions.CompletionFront(
            app.router.routes, counter=requests, max_body_bytes=config.limits.max_body_bytes
        )
    return app


class AutellixApp(FastAPI):
    """The service's app: FastAPI, with completion calls answered by ``front`` first."""

    front: completions.CompletionFront | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        front = self.front
        if front is not None:
            scope["app"] = self
            replay = await front.handle(scope, receive, send)
            if replay is None:
                return
            receive = replay
        await super().__call__(scope, receive, send)


async def _reap_loop(registry: ProgramRegistry, idle_timeout_s: float) -> None:
    interval = min(max(idle_timeout_s / 4, 0.05), 5.0)
    while True:
        await asyncio.sleep(interval)
        ended = registry.reap()
        if ended:
            log.info("idle programs ended", extra={"num_programs": ended})


def _push_snapshot(pool: EnginePool, program_id: str, snapshot: ProgramSnapshot) -> None:
    """A program's state changed in the table: engines re-rank its calls still waiting."""
    for slot in pool.slots.values():
        slot.adapter.refresh(program_id, snapshot)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("autellix")
    except PackageNotFoundError:
        return "0.0.0"
