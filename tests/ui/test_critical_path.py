"""The critical path the DAG view highlights: the heaviest path of attained service."""

from __future__ import annotations

from autellix_backend.server.ui_api import critical_path


def test_a_join_takes_its_heaviest_branch() -> None:
    # plan -> (a | b | c) -> reduce; b is the slowest map.
    nodes = ["plan", "a", "b", "c", "reduce"]
    edges = [("plan", x) for x in "abc"] + [(x, "reduce") for x in "abc"]
    service = {"plan": 1.0, "a": 2.0, "b": 5.0, "c": 3.0, "reduce": 1.0}
    assert critical_path(nodes, edges, service) == ["plan", "b", "reduce"]


def test_nodes_without_service_and_unknown_edge_ends_count_as_zero() -> None:
    nodes = ["n1", "llm1", "n2", "llm2"]
    edges = [("main", "n1"), ("n1", "llm1"), ("llm1", "n2"), ("n2", "llm2")]
    assert critical_path(nodes, edges, {"llm1": 1.0, "llm2": 0.5}) == ["n1", "llm1", "n2", "llm2"]


def test_a_cycle_or_no_service_gives_no_path() -> None:
    assert critical_path(["a", "b"], [("a", "b"), ("b", "a")], {"a": 1.0, "b": 1.0}) == []
    assert critical_path(["a", "b"], [("a", "b")], {}) == []
