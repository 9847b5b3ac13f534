"""The tracing UI: the page at ``/ui`` and its read-only JSON API under ``/v1/ui``.

The page is static (built from ``ui/`` at the repository root) and served with a
Content-Security-Policy that allows scripts from this origin only, so no inline script (and
no script injected through a program's id or a node's name) can run. The API applies the
service's API keys: a key sees its own programs, the admin key (``admin_key``) all of them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse

from autellix_backend.server.schemas import ERROR_RESPONSES
from autellix_backend.server.state import Principal, State
from autellix_backend.server.ui import STATIC_DIR
from autellix_backend.server.ui_api import Scope, list_engines, list_programs, program_trace
from autellix_backend.server.ui_schemas import UiEngineList, UiProgramList, UiProgramTrace

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        # Cytoscape and ECharts size their canvases through inline style attributes.
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
STATIC_FILES = {
    "app.js": "text/javascript",
    "app.css": "text/css",
    "THIRD_PARTY_LICENSES.txt": "text/plain; charset=utf-8",
}

page = APIRouter(include_in_schema=False)
router = APIRouter(prefix="/v1/ui", tags=["Tracing UI"])


@page.get("/ui")
async def ui_page() -> FileResponse:
    """The single page; it routes between views with the URL fragment."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=SECURITY_HEADERS)


@page.get("/ui/static/{name}")
async def ui_static(name: str) -> FileResponse:
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise HTTPException(404)
    return FileResponse(STATIC_DIR / name, media_type=media_type, headers=SECURITY_HEADERS)


def _scope(state: State, owner: str | None) -> Scope:
    admin = owner is None or owner == state.config.admin_key
    return Scope(owner=owner, admin=admin)


@router.get("/programs", responses=ERROR_RESPONSES, summary="Programs for the UI's table")
async def ui_programs(
    state: State,
    owner: Principal,
    include_finished: Annotated[bool, Query(description="Add ended programs.")] = True,
) -> UiProgramList:
    """The caller's programs (every program for the admin key), live ones first."""
    return list_programs(
        state.programs, state.ui, _scope(state, owner), include_finished=include_finished
    )


@router.get("/program", responses=ERROR_RESPONSES, summary="One program's DAG, calls, schedule")
async def ui_program(
    state: State,
    owner: Principal,
    program_id: Annotated[str, Query(description="The program id, as its client knows it.")],
    program_owner: Annotated[
        str | None, Query(alias="owner", description="Its owner (admin key only).")
    ] = None,
) -> UiProgramTrace:
    """Everything the Program view draws; 404 when the caller cannot see the program."""
    return program_trace(state.programs, state.ui, _scope(state, owner), program_id, program_owner)


@router.get("/engines", responses=ERROR_RESPONSES, summary="Engines and their recent series")
async def ui_engines(state: State, owner: Principal) -> UiEngineList:
    """Every engine's health, load and sampled series (no program data: any key may read)."""
    return list_engines(state.pool, state.ui)
