"""The service's parts, built once per app and shared by the routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from autellix_backend.server.auth import KeyRing
from autellix_backend.server.config import ServerConfig
from autellix_backend.server.gateway import Gateway
from autellix_backend.server.metrics import ServiceMetrics
from autellix_backend.server.pool import EnginePool
from autellix_backend.server.programs import ProgramRegistry
from autellix_backend.server.ui_recorder import UiRecorder


@dataclass(frozen=True, slots=True)
class ServiceState:
    config: ServerConfig
    keys: KeyRing
    programs: ProgramRegistry
    pool: EnginePool
    gateway: Gateway
    metrics: ServiceMetrics
    ui: UiRecorder
    """Engine and program series for the tracing UI."""


def service_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.autellix
    return state


async def get_state(request: Request) -> ServiceState:
    """Dependency form of ``service_state`` (async, so FastAPI runs it without a thread)."""
    return service_state(request)


_bearer = HTTPBearer(auto_error=False, description="An API key, when the service has keys.")


async def get_principal(
    request: Request,
    _: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    """The caller's key name (None when the service runs without keys); 401 otherwise."""
    return service_state(request).keys.principal(request.headers.get("authorization"))


State = Annotated[ServiceState, Depends(get_state)]
Principal = Annotated[str | None, Depends(get_principal)]
