"""The server-side DAG of a program (what ``/v1/programs/{id}`` shows): merges and bounds."""

from __future__ import annotations

from autellix_backend.core.dag import DagNode, ProgramDag


def test_a_later_report_updates_a_node_but_keeps_what_only_the_first_knew() -> None:
    dag = ProgramDag(max_nodes=10)
    dag.upsert(DagNode("c1", "llm", name="plan", thread_id="t", start=1.0))
    dag.upsert(DagNode("c1", "node", thread_id="t", status="finished", end=3.0))
    assert dag.nodes["c1"] == DagNode(
        "c1", "llm", name="plan", thread_id="t", status="finished", start=1.0, end=3.0
    )
    dag.upsert(DagNode("c1", "llm", status="finished"))
    assert (dag.nodes["c1"].start, dag.nodes["c1"].end) == (1.0, 3.0)
    dag.upsert(DagNode("c1", "tool", name="search", start=2.0, end=4.0))
    node = dag.nodes["c1"]
    assert (node.kind, node.name, node.start, node.end) == ("tool", "search", 2.0, 4.0)
    dag.upsert(DagNode("g", "node"))
    dag.upsert(DagNode("g", "node", name="graph-node"))
    assert (dag.nodes["g"].kind, dag.nodes["g"].name) == ("node", "graph-node")


def test_edges_come_from_every_parent_but_never_from_the_node_itself() -> None:
    dag = ProgramDag(max_nodes=10)
    dag.upsert(DagNode("j", "llm"), parent_ids=("a", "j", "b"))
    assert list(dag.edges) == [("a", "j"), ("b", "j")]


def test_status_changes_only_known_nodes() -> None:
    dag = ProgramDag(max_nodes=10)
    dag.upsert(DagNode("c", "llm"))
    dag.set_status("c", "error")
    dag.set_status("ghost", "error")
    assert dag.nodes["c"].status == "error"
    assert "ghost" not in dag.nodes


def test_threads_keep_the_parent_once_known() -> None:
    dag = ProgramDag(max_nodes=10)
    dag.add_thread("t1", "main")
    dag.add_thread("t1")  # a call's report, which does not know the parent
    dag.add_thread("t2", "t2")  # its own parent means none
    dag.add_thread("t3", "t1")
    dag.add_thread("t3", "t2")
    assert dag.thread_parents == {"t1": "main", "t2": None, "t3": "t2"}
    dag.upsert(DagNode("c", "llm", thread_id="t4"))
    assert dag.thread_parents["t4"] is None


def test_the_dag_keeps_the_newest_nodes_edges_and_threads_within_its_bound() -> None:
    dag = ProgramDag(max_nodes=2)
    for i in range(4):
        dag.upsert(DagNode(f"c{i}", "llm", thread_id=f"t{i}"))
    assert list(dag.nodes) == ["c2", "c3"]
    assert dag.num_dropped_nodes == 2
    assert list(dag.thread_parents) == ["t2", "t3"]
    exact = ProgramDag(max_nodes=2)
    exact.upsert(DagNode("a", "llm"))
    exact.upsert(DagNode("b", "llm", thread_id="x"))
    assert (list(exact.nodes), exact.num_dropped_nodes) == (["a", "b"], 0)
    assert list(exact.thread_parents) == ["main", "x"]
    edges = ProgramDag(max_nodes=2)
    edges.upsert(DagNode("n", "llm"), parent_ids=tuple(f"p{i}" for i in range(9)))
    assert list(edges.edges) == [(f"p{i}", "n") for i in range(1, 9)]
