"""Per-program DAG as the front end has seen it: nodes (graph nodes, LLM and tool calls),
dependency edges and the thread tree. Bounded: past ``max_nodes`` the oldest nodes go."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class DagNode:
    node_id: str
    """Call id for LLM calls, the front end's node id for graph nodes and tools."""
    kind: str
    """``node``, ``llm``, ``tool``, ``interrupt`` (``autellix_protocol.SPAN_KINDS``)."""
    name: str = ""
    thread_id: str = "main"
    status: str = "running"
    """``running``, ``finished``, ``aborted``, ``error`` or ``cancelled`` (stopped because another
    part of the program failed)."""
    start: float | None = None
    """Unix time the node's span started (None: not reported; LLM calls take the table's)."""
    end: float | None = None
    """Unix time its span ended (None: still running or not reported)."""


class ProgramDag:
    """Nodes, edges and threads of one program."""

    def __init__(self, max_nodes: int) -> None:
        self.max_nodes = max_nodes
        self.nodes: OrderedDict[str, DagNode] = OrderedDict()
        self.edges: OrderedDict[tuple[str, str], None] = OrderedDict()
        self.thread_parents: dict[str, str | None] = {}
        self.num_dropped_nodes = 0

    def upsert(self, node: DagNode, parent_ids: tuple[str, ...] = ()) -> None:
        """Add ``node`` or update it (a later report wins, but keeps known name and kind)."""
        old = self.nodes.get(node.node_id)
        if old is not None:
            node = replace(
                node,
                name=node.name or old.name,
                kind=old.kind if node.kind == "node" and old.kind != "node" else node.kind,
                start=old.start if node.start is None else node.start,
                end=old.end if node.end is None else node.end,
            )
        self.nodes[node.node_id] = node
        self.add_thread(node.thread_id)
        for parent in parent_ids:
            if parent != node.node_id:
                self.edges[(parent, node.node_id)] = None
        self._trim()

    def set_status(self, node_id: str, status: str) -> None:
        node = self.nodes.get(node_id)
        if node is not None:
            self.nodes[node_id] = replace(node, status=status)

    def add_thread(self, thread_id: str, parent_thread_id: str | None = None) -> None:
        if parent_thread_id == thread_id:
            parent_thread_id = None
        if parent_thread_id is not None or thread_id not in self.thread_parents:
            self.thread_parents[thread_id] = parent_thread_id
        if len(self.thread_parents) > self.max_nodes:
            self.thread_parents.pop(next(iter(self.thread_parents)))

    def _trim(self) -> None:
        while len(self.nodes) > self.max_nodes:
            self.nodes.popitem(last=False)
            self.num_dropped_nodes += 1
        while len(self.edges) > 4 * self.max_nodes:
            self.edges.popitem(last=False)
