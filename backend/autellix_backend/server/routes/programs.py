"""Program sessions: start, list, inspect (threads, calls, DAG) and end programs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Query, Response

from autellix_backend.server.schemas import (
    ERROR_RESPONSES,
    ProgramCreate,
    ProgramDetail,
    ProgramList,
    ProgramSummary,
)
from autellix_backend.server.state import Principal, State
from autellix_backend.server.views import program_detail, program_summary

router = APIRouter(prefix="/v1/programs", tags=["Programs"])


@router.post(
    "",
    status_code=201,
    responses={**ERROR_RESPONSES, 200: {"description": "The program already existed"}},
    summary="Start a program",
)
async def start_program(
    state: State,
    owner: Principal,
    response: Response,
    body: Annotated[ProgramCreate | None, Body()] = None,
) -> ProgramSummary:
    """Start a session (201), or return the caller's existing one with that id (200)."""
    body = body or ProgramCreate()
    session, created = state.programs.start(owner, body.program_id, body.metadata)
    if not created:
        response.status_code = 200
    return program_summary(state.programs, session)


@router.get("", responses=ERROR_RESPONSES, summary="List the caller's programs")
async def list_programs(
    state: State,
    owner: Principal,
    limit: Annotated[int, Query(ge=1, le=1000, description="Most recently active first.")] = 100,
) -> ProgramList:
    sessions = state.programs.sessions(owner)[-limit:]
    sessions.reverse()
    return ProgramList(data=[program_summary(state.programs, s) for s in sessions])


@router.get("/{program_id:path}", responses=ERROR_RESPONSES, summary="A program's row and DAG")
async def get_program(program_id: str, state: State, owner: Principal) -> ProgramDetail:
    """The program's row, calls and DAG; an ended program is read from the table's history."""
    return program_detail(state.programs, state.programs.lookup(owner, program_id))


@router.delete("/{program_id:path}", responses=ERROR_RESPONSES, summary="End a program")
async def end_program(program_id: str, state: State, owner: Principal) -> ProgramSummary:
    session = state.programs.get(owner, program_id)
    summary = program_summary(state.programs, session)
    state.programs.end(owner, program_id)
    return summary.model_copy(update={"finished": True, "state": "finished"})
