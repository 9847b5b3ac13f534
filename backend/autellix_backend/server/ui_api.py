"""The tracing UI's JSON views: read-only functions over the process table, the engine pool
and the UI recorder's samples. The UI keeps no state of its own; everything it shows comes
from here.

Scoping: a caller sees the programs its API key owns; the admin key sees every program.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from autellix_backend.core import CallRecord, ProgramRecord
from autellix_backend.core.dag import DagNode
from autellix_backend.server.errors import APIError
from autellix_backend.server.programs import ProgramRegistry, Session, outer_call_id
from autellix_backend.server.ui_recorder import EngineSeries, UiRecorder
from autellix_backend.server.ui_schemas import (
    UiCall,
    UiEdge,
    UiEngine,
    UiEngineList,
    UiEngineSeries,
    UiNode,
    UiProgramList,
    UiProgramRow,
    UiProgramTrace,
    UiSchedule,
    UiThread,
    UiToolGap,
)

if TYPE_CHECKING:
    from autellix_backend.server.pool import EnginePool


@dataclass(frozen=True, slots=True)
class Scope:
    """Whose programs a caller may see."""

    owner: str | None
    """The caller's key name (None when the service runs without keys)."""
    admin: bool = False
    """True for the admin key: every owner's programs."""

    def allows(self, owner: str | None) -> bool:
        return self.admin or owner == self.owner


class _Clock:
    """Converts the table's monotonic times to Unix times, at one instant."""

    def __init__(self, programs: ProgramRegistry) -> None:
        self.mono = programs.clock()
        self.unix = time.time()

    def __call__(self, t: float) -> float:
        return self.unix - (self.mono - t)


def list_programs(
    programs: ProgramRegistry, recorder: UiRecorder, scope: Scope, *, include_finished: bool
) -> UiProgramList:
    """The Programs view: the caller's live programs, then (optionally) ended ones."""
    clock = _Clock(programs)
    rows = [_row(s, recorder, clock) for s in _visible(programs, scope, include_finished)]
    return UiProgramList(now=clock.unix, data=rows)


def program_trace(
    programs: ProgramRegistry,
    recorder: UiRecorder,
    scope: Scope,
    program_id: str,
    owner: str | None,
) -> UiProgramTrace:
    """The Program view of ``program_id`` (of ``owner``, for the admin); 404 if not visible."""
    session = _find(programs, scope, program_id, owner)
    clock = _Clock(programs)
    record, dag = session.record, session.dag
    mono_now = programs.clock()
    calls = {
        outer_call_id(c.call_id): _call(c, recorder, clock, mono_now) for c in record.calls.values()
    }
    service = {outer_call_id(c.call_id): c.service for c in record.calls.values()}
    edges = list(dag.edges)
    path = critical_path(list(dag.nodes), edges, service)
    on_path = set(path)
    path_edges = set(itertools.pairwise(path))
    nodes = [_node(n, calls.get(n.node_id), n.node_id in on_path) for n in dag.nodes.values()]
    return UiProgramTrace(
        now=clock.unix,
        program=_row(session, recorder, clock),
        nodes=nodes,
        edges=[UiEdge(source=s, target=t, on_critical_path=(s, t) in path_edges) for s, t in edges],
        threads=[UiThread(thread_id=t, parent_thread_id=p) for t, p in dag.thread_parents.items()],
        calls=list(calls.values()),
        critical_path=path,
        gaps=tool_gaps(nodes, edges, calls),
        num_dropped_nodes=dag.num_dropped_nodes,
        schedule=_schedule(record, recorder, clock),
    )


def list_engines(pool: EnginePool, recorder: UiRecorder) -> UiEngineList:
    """The Engines view: every engine's state now and its sampled series."""
    engines = []
    for engine_id, slot in pool.slots.items():
        load = slot.adapter.load()
        series = recorder.engines.get(engine_id)
        engines.append(
            UiEngine(
                engine_id=engine_id,
                model=slot.adapter.model,
                healthy=slot.healthy,
                restarts=slot.num_restarts,
                num_running=load.num_running,
                num_waiting=load.num_waiting,
                series=_engine_series(series),
            )
        )
    return UiEngineList(now=time.time(), engines=engines)


def tool_gaps(
    nodes: Iterable[UiNode], edges: Iterable[tuple[str, str]], calls: Mapping[str, UiCall]
) -> list[UiToolGap]:
    """The time each call's program spent outside the engines before it: from the end of
    its latest-ending parent call to its own arrival, named by the tool nodes in between.

    Parents are the nearest LLM calls up the DAG, walking through tool, interrupt and graph
    nodes; a call whose parents had not ended when it arrived (or that has none) has no gap.
    """
    by_id = {n.node_id: n for n in nodes}
    parents: dict[str, list[str]] = {}
    for source, target in edges:
        parents.setdefault(target, []).append(source)
    gaps = []
    for call_id, call in calls.items():
        before: tuple[float, str] | None = None
        tools: list[UiNode] = []
        seen = {call_id}
        stack = list(parents.get(call_id, ()))
        while stack:
            node_id = stack.pop()
            if node_id in seen:
                continue
            seen.add(node_id)
            parent = calls.get(node_id)
            if parent is not None:
                if parent.end is not None:
                    before = max(before or (parent.end, node_id), (parent.end, node_id))
                continue
            node = by_id.get(node_id)
            if node is not None and node.kind == "tool":
                tools.append(node)
            stack.extend(parents.get(node_id, ()))
        if before is None or before[0] >= call.arrival:
            continue
        tools.sort(key=lambda n: (n.start is None, n.start or 0.0, n.node_id))
        gaps.append(
            UiToolGap(
                call_id=call_id,
                after_call_id=before[1],
                thread_id=call.thread_id,
                start=before[0],
                end=call.arrival,
                tool_node_ids=[n.node_id for n in tools],
                tool_names=[n.name or n.node_id for n in tools],
            )
        )
    return gaps


def critical_path(
    nodes: Sequence[str], edges: Iterable[tuple[str, str]], weight: Mapping[str, float]
) -> list[str]:
    """The heaviest path through the DAG, weights being the calls' attained service.

    This is the quantity ATLAS ranks a program by. Ties go to the path found first in
    ``nodes`` order; nodes on a cycle (which a well-formed trace never has) are ignored.
    """
    known = dict.fromkeys(nodes)
    children: dict[str, list[str]] = {n: [] for n in known}
    indegree = dict.fromkeys(known, 0)
    for source, target in edges:
        if source in known and target in known:
            children[source].append(target)
            indegree[target] += 1
    # Best (service, number of nodes) of a path ending at each node: among paths of equal
    # service the longer one wins, so the path runs through the graph nodes around calls.
    best: dict[str, tuple[float, int]] = {n: (weight.get(n, 0.0), 1) for n in known}
    previous: dict[str, str | None] = dict.fromkeys(known)
    ready = [n for n in known if indegree[n] == 0]
    for node in ready:  # grows while it is walked: Kahn's topological order
        for child in children[node]:
            service, length = best[node]
            candidate = (service + weight.get(child, 0.0), length + 1)
            if candidate > best[child]:
                best[child], previous[child] = candidate, node
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    if not ready:
        return []
    last = max(ready, key=lambda n: best[n])
    if best[last][0] <= 0:
        return []
    path: list[str] = []
    step: str | None = last
    while step is not None:
        path.append(step)
        step = previous[step]
    path.reverse()
    return path


# Reading the table ------------------------------------------------------------


def _visible(programs: ProgramRegistry, scope: Scope, include_finished: bool) -> Iterator[Session]:
    for record in list(programs.table.programs.values()):
        if scope.allows(record.owner):
            session = programs.find(record.owner, _outer_id(record))
            if session is not None:
                yield session
    if include_finished:
        for record in reversed(list(programs.table.history.values())):
            if scope.allows(record.owner):
                with contextlib.suppress(APIError):
                    yield programs.lookup(record.owner, _outer_id(record))


def _find(programs: ProgramRegistry, scope: Scope, program_id: str, owner: str | None) -> Session:
    """The program, live or in the history; 404 when absent or not the caller's."""
    return programs.lookup(owner if scope.admin else scope.owner, program_id)


def _outer_id(record: ProgramRecord) -> str:
    """The id its client knows (the table namespaces ids by owner: ``<owner>/<id>``)."""
    if record.owner is None:
        return record.program_id
    return record.program_id.removeprefix(f"{record.owner}/")


def _row(session: Session, recorder: UiRecorder, clock: _Clock) -> UiProgramRow:
    record = session.record
    active = sum(len(t.active_call_ids) for t in record.threads.values())
    state = "running" if active else "idle"
    if session.ended or session.finished:
        state = "finished"
    return UiProgramRow(
        program_id=session.program_id,
        owner=session.owner,
        state=state,
        num_threads=len(record.threads),
        num_calls=record.num_calls,
        num_active_calls=active,
        service=record.service,
        total_wait=record.total_wait,
        level=recorder.level(record.service),
        engine_ids=sorted(record.engine_ids),
        created=session.created,
        age_s=max(0.0, clock.unix - session.created),
    )


def _node(node: DagNode, call: UiCall | None, on_path: bool) -> UiNode:
    """A DAG node with its times: an LLM call's from the table, others' from their span."""
    start, end = (call.arrival, call.end) if call is not None else (node.start, node.end)
    return UiNode(
        node_id=node.node_id,
        kind=node.kind,
        name=node.name,
        thread_id=node.thread_id,
        status=node.status,
        on_critical_path=on_path,
        start=start,
        end=end,
    )


def _call(call: CallRecord, recorder: UiRecorder, clock: _Clock, mono_now: float) -> UiCall:
    start = call.first_scheduled_time
    return UiCall(
        call_id=outer_call_id(call.call_id),
        thread_id=call.thread_id,
        engine_id=call.engine_id,
        status=call.status.name.lower(),
        arrival=clock(call.arrival_time),
        start=None if start is None else clock(start),
        end=None if call.finish_time is None else clock(call.finish_time),
        wait=call.current_wait(mono_now),
        service=call.service,
        num_preemptions=call.num_preemptions,
        level=recorder.level(call.priority),
        preemptions=[
            (clock(begin), None if end is None else clock(end))
            for begin, end in call.preempted_spans or ()
        ],
        promotions=[clock(t) for t in call.promotion_times or ()],
    )


def _schedule(record: ProgramRecord, recorder: UiRecorder, clock: _Clock) -> UiSchedule:
    series = recorder.programs.get(record.program_id)
    if series is None:
        return UiSchedule(t=[], service=[], level=[], promotions=[])
    t, service, level = list(series.t), list(series.service), list(series.level)
    if t and record.end_time is None:  # the last value still holds now
        t.append(clock.unix)
        service.append(service[-1])
        level.append(level[-1])
    return UiSchedule(t=t, service=service, level=level, promotions=list(series.promotions))


def _engine_series(series: EngineSeries | None) -> UiEngineSeries:
    series = series or EngineSeries()
    num_levels = max((len(q) for q in series.queues), default=0)
    queues = [[q[i] if i < len(q) else 0 for q in series.queues] for i in range(num_levels)]
    return UiEngineSeries(
        t=list(series.t),
        running=list(series.running),
        waiting=list(series.waiting),
        queues=queues,
        kv_usage=list(series.kv_usage),
        cache_hit_rate=list(series.cache_hit_rate),
        preemptions=list(series.preemptions),
        healthy=list(series.healthy),
    )
