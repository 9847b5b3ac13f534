"""Operations: ``/healthz`` for probes and ``/metrics`` for Prometheus."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from autellix_backend.server.schemas import EngineHealth, Health
from autellix_backend.server.state import State

router = APIRouter(tags=["Operations"])


@router.get("/healthz", summary="Service health", responses={503: {"model": Health}})
@router.get("/health", summary="Service health (vLLM's path)", responses={503: {"model": Health}})
async def healthz(state: State) -> JSONResponse:
    """``ok`` with every engine in rotation, ``degraded`` with some, ``down`` (503) with none;
    ``engine_details`` gives each engine's state, restarts and last error.

    Also served at ``/health``, the path vLLM uses, so one gateway can front another.
    """
    engines = {s.engine_id: s.healthy for s in state.pool.slots.values()}
    num_healthy = sum(engines.values())
    status: Literal["ok", "degraded", "down"] = (
        "ok" if num_healthy == len(engines) else "degraded" if num_healthy else "down"
    )
    details = {
        s.engine_id: EngineHealth(
            state=s.state.value,
            num_restarts=s.num_restarts,
            last_error=s.last_error,
            last_error_at=s.last_error_at,
            num_inflight_calls=len(s.inflight),
        )
        for s in state.pool.slots.values()
    }
    health = Health(
        status=status,
        engines=engines,
        engine_details=details,
        num_programs=len(state.programs),
        num_inflight_calls=state.pool.num_inflight,
    )
    return JSONResponse(health.model_dump(), status_code=503 if status == "down" else 200)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(state: State) -> Response:
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
