"""The tool-heavy BFCL workload: BFCL's programs, with named tools that take their time."""

from __future__ import annotations

from autellix_backend.workloads import bfcl, bfcl_tools, make_workload


def test_same_programs_as_bfcl_with_a_named_tool_before_every_later_call() -> None:
    plain = bfcl.generate(20, seed=3)
    tools = make_workload("bfcl_tools", 20, seed=3, arrivals="batch")
    for a, b in zip(plain, tools, strict=True):
        assert [c.prompt for c in a.calls] == [c.prompt for c in b.calls]
        assert [c.parent_ids for c in a.calls] == [c.parent_ids for c in b.calls]
        assert b.workload == "bfcl_tools"
        for call in b.calls[1:]:
            tool = b.metadata[f"tool:{call.call_id}"]
            assert tool in (*bfcl_tools.apis(b), bfcl_tools.USER)
            assert 0.02 <= call.delay_before <= 60.0
        assert f"tool:{b.calls[0].call_id}" not in b.metadata


def test_transactions_take_longer_than_local_commands() -> None:
    programs = bfcl_tools.generate(300, seed=0)
    by_tool: dict[str, list[float]] = {}
    for p in programs:
        for call in p.calls[1:]:
            by_tool.setdefault(p.metadata[f"tool:{call.call_id}"], []).append(call.delay_before)

    def mean(name: str) -> float:
        return sum(by_tool[name]) / len(by_tool[name])

    assert mean("GorillaFileSystem") < 1.0 < mean("MessageAPI") < 2.5 < mean("TravelAPI")
    assert bfcl_tools.generate(5, seed=0) == bfcl_tools.generate(5, seed=0)
