"""The DAG rules on their own: events in, threads and edges out."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from autellix_graph import NodeKind, build_dag
from autellix_graph._dag import DagBuilder, Frontier, NodeAdded, RunResumed, TaskStarted

LLM, TOOL, INTERRUPT = NodeKind.LLM, NodeKind.TOOL, NodeKind.INTERRUPT


def test_sequential_tasks_chain_their_calls() -> None:
    dag = build_dag(
        [
            TaskStarted("a:1", "a", 1),
            NodeAdded("c1", LLM, "a:1"),
            NodeAdded("c2", LLM, "a:1"),
            TaskStarted("b:2", "b", 2),
            NodeAdded("c3", LLM, "b:2"),
        ]
    )
    assert dag.llm_parents() == {"c1": (), "c2": ("c1",), "c3": ("c2",)}


def test_parallel_tasks_share_parents_and_join_at_the_next_superstep() -> None:
    dag = build_dag(
        [
            TaskStarted("plan:1", "plan", 1),
            NodeAdded("p", LLM, "plan:1"),
            TaskStarted("map:2", "map", 2),
            TaskStarted("map:3", "map", 2),
            NodeAdded("m1", LLM, "map:2"),
            NodeAdded("m2", LLM, "map:3"),
            TaskStarted("reduce:4", "reduce", 3),
            NodeAdded("r", LLM, "reduce:4"),
        ]
    )
    assert dag.llm_parents() == {"p": (), "m1": ("p",), "m2": ("p",), "r": ("m1", "m2")}
    groups = {t.thread_id: t.group for t in dag.threads}
    assert groups["map:2"] == groups["map:3"] != groups["plan:1"]


def test_a_task_without_calls_passes_its_parents_through() -> None:
    dag = build_dag(
        [
            TaskStarted("a:1", "a", 1),
            NodeAdded("c1", LLM, "a:1"),
            TaskStarted("route:2", "route", 2),
            TaskStarted("b:3", "b", 3),
            NodeAdded("c2", LLM, "b:3"),
        ]
    )
    assert dag.llm_parents()["c2"] == ("c1",)


def test_subgraph_calls_hang_off_the_parent_task_and_rejoin_it() -> None:
    dag = build_dag(
        [
            TaskStarted("outer:1", "outer", 1),
            NodeAdded("c1", LLM, "outer:1"),
            TaskStarted("outer:1|x:2", "x", 1),
            TaskStarted("outer:1|y:3", "y", 1),
            NodeAdded("cx", LLM, "outer:1|x:2"),
            NodeAdded("cy", LLM, "outer:1|y:3"),
            NodeAdded("c2", LLM, "outer:1"),
            TaskStarted("next:4", "next", 2),
            NodeAdded("c3", LLM, "next:4"),
        ]
    )
    parents = dag.llm_parents()
    assert parents["cx"] == parents["cy"] == ("c1",)
    assert parents["c2"] == ("cx", "cy")
    assert parents["c3"] == ("c2",)
    nested = {t.thread_id: t.parent_thread_id for t in dag.threads}
    assert nested["outer:1|x:2"] == "outer:1"
    assert nested["outer:1"] == "main"


def test_tools_are_nodes_between_llm_calls() -> None:
    dag = build_dag(
        [
            TaskStarted("agent:1", "agent", 1),
            NodeAdded("c1", LLM, "agent:1"),
            TaskStarted("tools:2", "tools", 2),
            NodeAdded("t1", TOOL, "tools:2"),
            NodeAdded("t2", TOOL, "tools:2"),
            TaskStarted("agent:3", "agent", 3),
            NodeAdded("c2", LLM, "agent:3"),
        ]
    )
    nodes = {n.node_id: n for n in dag.nodes}
    assert nodes["t1"].parent_ids == nodes["t2"].parent_ids == ("c1",)
    assert nodes["c2"].parent_ids == ("t1", "t2")
    assert nodes["c2"].llm_parent_ids == ("c1",)


def test_an_interrupt_and_resume_continue_the_same_thread() -> None:
    dag = build_dag(
        [
            TaskStarted("ask:1", "ask", 1),
            NodeAdded("c1", LLM, "ask:1"),
            NodeAdded("i", INTERRUPT, "ask:1"),
            RunResumed(),
            TaskStarted("ask:1", "ask", 1),
            NodeAdded("c2", LLM, "ask:1"),
            TaskStarted("done:2", "done", 2),
            NodeAdded("c3", LLM, "done:2"),
        ]
    )
    nodes = {n.node_id: n for n in dag.nodes}
    assert nodes["i"].parent_ids == ("c1",)
    assert nodes["c2"].parent_ids == ("i",)
    assert nodes["c2"].llm_parent_ids == ("c1",)
    assert nodes["c3"].llm_parent_ids == ("c2",)
    assert [t.thread_id for t in dag.threads] == ["ask:1", "done:2"]


def test_a_retried_task_keeps_its_thread() -> None:
    builder = DagBuilder()
    first = builder.start_task("a:1", "a", 1)
    builder.add_node("c1", LLM, "a:1")
    assert builder.start_task("a:1", "a", 1) is first
    assert builder.add_node("c2", LLM, "a:1").llm_parent_ids == ("c1",)


@settings(deadline=None)  # a loaded CI machine can take over 200 ms for one example
@given(st.lists(st.tuples(st.integers(0, 3), st.booleans()), min_size=1, max_size=30))
def test_parents_always_point_back_in_time(steps: list[tuple[int, bool]]) -> None:
    """Whatever the task layout, every parent is an earlier LLM call (the DAG is acyclic)."""
    builder = DagBuilder()
    seen: set[str] = set()
    for index, (width, call) in enumerate(steps):
        for lane in range(width + 1):
            thread = f"n{lane}:{index}"
            builder.start_task(thread, f"n{lane}", index + 1)
            if call or lane == 0:
                node = builder.add_node(f"c{index}.{lane}", LLM, thread)
                assert set(node.llm_parent_ids) <= seen
        seen |= {n.node_id for n in builder.snapshot().nodes}


def test_a_join_depends_on_every_parallel_node_of_any_kind() -> None:
    dag = build_dag(
        [
            TaskStarted("map:1", "map", 1),
            TaskStarted("map:2", "map", 1),
            NodeAdded("m1", LLM, "map:1"),
            NodeAdded("m2", LLM, "map:2"),
            NodeAdded("t2", TOOL, "map:2"),
            TaskStarted("reduce:3", "reduce", 2),
            NodeAdded("r", LLM, "reduce:3"),
        ]
    )
    reduce_call = next(n for n in dag.nodes if n.node_id == "r")
    assert reduce_call.parent_ids == ("m1", "t2")
    assert reduce_call.llm_parent_ids == ("m1", "m2")


def test_a_call_of_the_main_thread_after_the_first_tasks_depends_on_them() -> None:
    dag = build_dag(
        [
            TaskStarted("a:1", "a", 1),
            TaskStarted("b:2", "b", 1),
            NodeAdded("a1", LLM, "a:1"),
            NodeAdded("b1", LLM, "b:2"),
            NodeAdded("after", LLM, "main"),
        ]
    )
    assert dag.llm_parents()["after"] == ("a1", "b1")


def test_each_resumed_run_follows_the_one_before() -> None:
    dag = build_dag(
        [
            TaskStarted("ask:1", "ask", 1),
            NodeAdded("a1", LLM, "ask:1"),
            RunResumed(),
            TaskStarted("review:2", "review", 1),
            NodeAdded("r1", LLM, "review:2"),
            RunResumed(),
            TaskStarted("final:3", "final", 1),
            NodeAdded("f1", LLM, "final:3"),
        ]
    )
    assert dag.llm_parents() == {"a1": (), "r1": ("a1",), "f1": ("r1",)}
    assert [(t.node_name, t.superstep, t.group) for t in dag.threads] == [
        ("ask", 1, 0),
        ("review", 1, 1),
        ("final", 1, 2),
    ]


def test_a_workflow_step_seen_again_keeps_its_thread_and_calls() -> None:
    builder = DagBuilder()
    first = builder.start_flow_task("step:1", "step", Frontier(("c0",), ("c0",)))
    assert builder.add_node("c1", LLM, "step:1").llm_parent_ids == ("c0",)
    assert builder.start_flow_task("step:1", "step", Frontier()) is first
    assert builder.add_node("c2", LLM, "step:1").llm_parent_ids == ("c1",)
    second = builder.start_flow_task("step:2", "step", Frontier(("c2",), ("c2",)))
    assert (first.superstep, second.superstep) == (0, 1)  # steps numbered as they start
    assert (second.parent_thread_id, second.group) == ("main", 0)


def test_calls_of_a_task_never_seen_starting_follow_their_enclosing_thread() -> None:
    builder = DagBuilder()
    builder.add_node("m1", LLM, "main")
    assert builder.add_node("x1", LLM, "a:1|b:2").llm_parent_ids == ("m1",)
    assert builder.add_node("x2", LLM, "a:1|b:2").llm_parent_ids == ("x1",)
    assert builder.add_node("y1", LLM, "a:1").llm_parent_ids == ("m1",)
    assert builder.snapshot().threads == ()  # only started tasks are threads


def test_a_task_calling_tools_itself_hangs_its_next_call_off_them() -> None:
    dag = build_dag(
        [
            TaskStarted("agent:1", "agent", 1),
            NodeAdded("c1", LLM, "agent:1"),
            TaskStarted("agent:1|sub:2", "sub", 1),
            NodeAdded("s1", LLM, "agent:1|sub:2"),
            NodeAdded("t1", TOOL, "agent:1"),
            NodeAdded("t2", TOOL, "agent:1"),
            NodeAdded("c2", LLM, "agent:1"),
        ]
    )
    nodes = {n.node_id: n for n in dag.nodes}
    assert nodes["t1"].parent_ids == ("s1",)
    assert nodes["c2"].parent_ids == ("t1", "t2")
    assert nodes["c2"].llm_parent_ids == ("s1",)
