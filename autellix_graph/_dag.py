"""The runtime DAG of one program, built from LangGraph task and call events.

Rules (see ``docs/graph.md``):

- A thread is one LangGraph task, keyed by its checkpoint namespace; its parent thread is the
  namespace with the last ``|``-segment removed (``"main"`` is the program's root thread).
- Tasks started under the same parent with the same superstep form a *group*; they run in
  parallel. The first call of a task depends on the frontier its group inherited: the last
  LLM call of each task of the previous group under the same parent (further back when a task
  made none), or, for the first group, the parent thread's own frontier.
- Later calls of a task depend on the task's previous call. When a task ran a subgraph, its
  next call depends on the end of that subgraph (the last group of its child tasks).
- Tool calls and interrupts are DAG nodes too: they hang off the thread's last node, and the
  next LLM call depends on them. The LLM-only projection (what the backend schedules on)
  skips them.

:class:`DagBuilder` applies events one by one; :func:`build_dag` folds a list of events into
a :class:`Dag`. Neither does I/O, so both are cheap to test alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeAlias

ROOT_THREAD_ID = "main"
"""Thread id of calls made outside any LangGraph task (also the parent of top-level tasks)."""


class NodeKind(StrEnum):
    """What a DAG node stands for."""

    LLM = "llm"
    TOOL = "tool"
    INTERRUPT = "interrupt"


@dataclass(frozen=True, slots=True)
class Frontier:
    """The nodes the next node of a thread depends on."""

    llm_ids: tuple[str, ...] = ()
    """Latest LLM calls (what the backend sees as parents), sorted."""
    node_ids: tuple[str, ...] = ()
    """Latest nodes of any kind (LLM, tool, interrupt), sorted."""

    @staticmethod
    def merge(frontiers: Iterable[Frontier]) -> Frontier:
        """The union of ``frontiers``, sorted once (a fan-in can have hundreds of parents,
        shared by every task of the next superstep)."""
        if not isinstance(frontiers, Sequence):
            frontiers = tuple(frontiers)
        if len(frontiers) == 1:  # a chain's step: already sorted and unique
            return frontiers[0]
        llm_ids: set[str] = set()
        node_ids: set[str] = set()
        for frontier in frontiers:
            llm_ids.update(frontier.llm_ids)
            node_ids.update(frontier.node_ids)
        return Frontier(tuple(sorted(llm_ids)), tuple(sorted(node_ids)))


EMPTY_FRONTIER = Frontier()


@dataclass(frozen=True, slots=True)
class ThreadInfo:
    """One program thread (a LangGraph task)."""

    thread_id: str
    """The task's checkpoint namespace (``node:task_id``, nested ones joined by ``|``)."""
    parent_thread_id: str
    """The enclosing task's namespace; ``ROOT_THREAD_ID`` for tasks of the top-level graph."""
    node_name: str
    """The graph node the task runs."""
    superstep: int
    """LangGraph superstep (``langgraph_step``) the task belongs to."""
    group: int
    """Index of the parallel group among the parent's groups (0 first)."""


@dataclass(frozen=True, slots=True)
class DagNode:
    """One node of the runtime DAG: an LLM call, a tool call or a human interrupt."""

    node_id: str
    kind: NodeKind
    thread_id: str
    parent_ids: tuple[str, ...]
    """Nodes of any kind this one depends on, sorted."""
    llm_parent_ids: tuple[str, ...]
    """LLM calls this one depends on, sorted (tool and interrupt nodes looked through)."""


@dataclass(frozen=True, slots=True)
class TaskStarted:
    """A LangGraph task began (or began again, on a retry or a resume)."""

    thread_id: str
    node_name: str
    superstep: int


@dataclass(frozen=True, slots=True)
class NodeAdded:
    """A thread made an LLM call, a tool call or hit an interrupt."""

    node_id: str
    kind: NodeKind
    thread_id: str


@dataclass(frozen=True, slots=True)
class RunResumed:
    """A new top-level run continues this program (resume after an interrupt)."""


DagEvent: TypeAlias = TaskStarted | NodeAdded | RunResumed


@dataclass(frozen=True, slots=True)
class Dag:
    """A program's DAG so far: its threads and its nodes, in arrival order."""

    threads: tuple[ThreadInfo, ...]
    nodes: tuple[DagNode, ...]

    def llm_parents(self) -> dict[str, tuple[str, ...]]:
        """LLM call id -> the LLM calls it depends on."""
        return {n.node_id: n.llm_parent_ids for n in self.nodes if n.kind is NodeKind.LLM}


def parent_thread_id(thread_id: str) -> str:
    """The namespace enclosing ``thread_id`` (``ROOT_THREAD_ID`` for a top-level task)."""
    return thread_id.rpartition("|")[0] or ROOT_THREAD_ID


@dataclass(slots=True, eq=False)
class _Group:
    key: tuple[int, int]
    """(run epoch, superstep)."""
    base: Frontier
    seq: int
    members: list[str] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class _Thread:
    info: ThreadInfo | None
    frontier: Frontier
    seq: int
    """Event counter when ``frontier`` was last set by the thread itself."""
    trailing: tuple[str, ...] = ()
    """Tool nodes since the thread's last LLM call or interrupt, in arrival order."""
    groups: list[_Group] = field(default_factory=list)
    """Groups of child tasks (a subgraph run inside this task)."""


class DagBuilder:
    """Applies DAG events in arrival order. Not thread-safe: callers hold a lock."""

    def __init__(self) -> None:
        self._threads: dict[str, _Thread] = {ROOT_THREAD_ID: _Thread(None, EMPTY_FRONTIER, 0)}
        self._nodes: list[DagNode] = []
        self._seq = 0
        self._epoch = 0

    def apply(self, event: DagEvent) -> DagNode | ThreadInfo | None:
        """Apply one event; return the node or thread it created, if any."""
        if isinstance(event, NodeAdded):
            return self.add_node(event.node_id, event.kind, event.thread_id)
        if isinstance(event, TaskStarted):
            return self.start_task(event.thread_id, event.node_name, event.superstep)
        if isinstance(event, RunResumed):
            self._epoch += 1
        return None

    def start_task(self, thread_id: str, node_name: str, superstep: int) -> ThreadInfo:
        """Register a task; a task seen before (retry, resume) keeps its thread."""
        existing = self._threads.get(thread_id)
        if existing is not None and existing.info is not None:
            return existing.info
        parent_id = parent_thread_id(thread_id)
        parent = self._thread(parent_id)
        key = (self._epoch, superstep)
        self._seq += 1
        if parent.groups and parent.groups[-1].key == key:
            group = parent.groups[-1]
        else:
            if parent.groups:
                members = parent.groups[-1].members
                base = Frontier.merge(self._end_frontier(m) for m in members)
            else:
                base = self._end_frontier(parent_id)
            group = _Group(key, base, self._seq)
            parent.groups.append(group)
        group.members.append(thread_id)
        info = ThreadInfo(thread_id, parent_id, node_name, superstep, len(parent.groups) - 1)
        self._threads[thread_id] = _Thread(info, group.base, self._seq)
        return info

    def start_flow_task(self, thread_id: str, node_name: str, after: Frontier) -> ThreadInfo:
        """Register a task of an event-driven program (a LlamaIndex Workflow step): its first
        call depends on ``after``, the frontiers of the events that triggered it, whatever the
        timing. A task seen before keeps its thread."""
        existing = self._threads.get(thread_id)
        if existing is not None and existing.info is not None:
            return existing.info
        parent_id = parent_thread_id(thread_id)
        self._thread(parent_id)
        self._seq += 1
        ordinal = sum(1 for t in self._threads.values() if t.info is not None)
        info = ThreadInfo(thread_id, parent_id, node_name, ordinal, 0)
        self._threads[thread_id] = _Thread(info, after, self._seq)
        return info

    def join(self, thread_id: str, frontier: Frontier) -> None:
        """Make the next call of ``thread_id`` also depend on ``frontier`` (a step that
        collected events from other steps)."""
        merged = Frontier.merge((self._end_frontier(thread_id), frontier))
        thread = self._threads[thread_id]
        self._seq += 1
        thread.frontier, thread.trailing, thread.seq = merged, (), self._seq

    def add_node(self, node_id: str, kind: NodeKind, thread_id: str) -> DagNode:
        """Add a call or interrupt made by ``thread_id`` and return it with its parents."""
        frontier = self._frontier(thread_id)
        thread = self._threads[thread_id]
        self._seq += 1
        if kind is NodeKind.TOOL:
            parents = frontier.node_ids
            thread.trailing = (*thread.trailing, node_id)
        else:
            parents = tuple(sorted(thread.trailing)) if thread.trailing else frontier.node_ids
            llm_ids = (node_id,) if kind is NodeKind.LLM else frontier.llm_ids
            thread.frontier = Frontier(llm_ids, (node_id,))
            thread.trailing = ()
            thread.seq = self._seq
        node = DagNode(node_id, kind, thread_id, parents, frontier.llm_ids)
        self._nodes.append(node)
        return node

    def frontier(self, thread_id: str) -> Frontier:
        """What the next LLM call of ``thread_id`` would depend on."""
        return self._end_frontier(thread_id)

    def snapshot(self) -> Dag:
        """The DAG so far."""
        threads = tuple(t.info for t in self._threads.values() if t.info is not None)
        return Dag(threads, tuple(self._nodes))

    def _thread(self, thread_id: str) -> _Thread:
        thread = self._threads.get(thread_id)
        if thread is None:
            # A namespace seen only through its calls (an unknown or foreign task).
            base = self._end_frontier(parent_thread_id(thread_id))
            thread = self._threads[thread_id] = _Thread(None, base, self._seq)
        return thread

    def _frontier(self, thread_id: str) -> Frontier:
        thread = self._thread(thread_id)
        if thread.groups and thread.groups[-1].seq > thread.seq:
            members = thread.groups[-1].members
            thread.frontier = Frontier.merge(self._end_frontier(m) for m in members)
            thread.trailing = ()
            thread.seq = self._seq
        return thread.frontier

    def _end_frontier(self, thread_id: str) -> Frontier:
        frontier = self._frontier(thread_id)
        trailing = self._threads[thread_id].trailing
        return Frontier(frontier.llm_ids, tuple(sorted(trailing))) if trailing else frontier


def build_dag(events: Iterable[DagEvent]) -> Dag:
    """Fold ``events`` (in arrival order) into the program's DAG."""
    builder = DagBuilder()
    for event in events:
        builder.apply(event)
    return builder.snapshot()
