"""Program rows of the process table as API views (ids as their owner knows them)."""

from __future__ import annotations

from autellix_backend.core import CallRecord, ProgramRecord
from autellix_backend.server.programs import ProgramRegistry, Session, outer_call_id
from autellix_backend.server.schemas import (
    CallView,
    DagView,
    EdgeView,
    NodeView,
    ProgramDetail,
    ProgramSummary,
    ThreadView,
)


def program_summary(programs: ProgramRegistry, session: Session) -> ProgramSummary:
    return _summary(programs, session, programs.record(session))


def program_detail(programs: ProgramRegistry, session: Session) -> ProgramDetail:
    record = programs.record(session)
    dag = session.dag
    threads = [
        ThreadView(
            thread_id=t.thread_id,
            parent_thread_id=dag.thread_parents.get(t.thread_id),
            num_calls=t.num_calls,
            num_active_calls=len(t.active_call_ids),
            service=t.service,
            wait=t.wait,
        )
        for t in record.threads.values()
    ]
    return ProgramDetail(
        **_summary(programs, session, record).model_dump(),
        threads=threads,
        calls=[_call_view(session, c, programs.clock()) for c in record.calls.values()],
        dag=DagView(
            nodes=[
                NodeView(
                    node_id=n.node_id,
                    kind=n.kind,
                    name=n.name,
                    thread_id=n.thread_id,
                    status=n.status,
                )
                for n in dag.nodes.values()
            ],
            edges=[EdgeView(source=s, target=t) for s, t in dag.edges],
            num_dropped_nodes=dag.num_dropped_nodes,
        ),
    )


def _summary(programs: ProgramRegistry, session: Session, record: ProgramRecord) -> ProgramSummary:
    finished = session.finished or session.ended
    return ProgramSummary(
        program_id=session.program_id,
        owner=session.owner,
        service=record.service,
        total_service=record.total_service,
        total_wait=record.total_wait,
        num_calls=record.num_calls,
        num_active_calls=sum(len(t.active_call_ids) for t in record.threads.values()),
        num_threads=len(record.threads),
        engine_ids=sorted(record.engine_ids),
        created=session.created,
        idle_s=max(0.0, programs.clock() - session.last_activity),
        finished=finished,
        state="failed" if session.failed else "finished" if finished else "running",
        metadata=dict(session.metadata),
    )


def _call_view(session: Session, call: CallRecord, now: float) -> CallView:
    return CallView(
        call_id=outer_call_id(call.call_id),
        thread_id=call.thread_id,
        parent_ids=[outer_call_id(p) for p in call.parent_ids],
        status=call.status.name.lower(),
        engine_id=call.engine_id,
        priority=call.priority,
        service=call.service,
        wait=call.current_wait(now),
        prompt_tokens=call.prompt_tokens,
        output_tokens=call.num_output_tokens,
    )
