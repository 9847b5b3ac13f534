"""Workload generators: statistics near their targets, DAGs well formed, runs reproducible."""

from __future__ import annotations

import pytest

from autellix_backend.workloads import (
    PAPER_STATS,
    WORKLOADS,
    UnknownWorkloadError,
    bfcl,
    lats,
    make_workload,
    sharegpt,
    workload_stats,
)
from autellix_backend.workloads.spec import ProgramSpec


def _assert_dag(program: ProgramSpec) -> None:
    seen: set[str] = set()
    produced: set[str] = set()
    for call in program.calls:
        assert set(call.parent_ids) <= seen, "parents come first"
        assert call.output_tokens > 0 and call.prompt_tokens > 0
        own = {s.key for s in call.prompt if s.key.endswith(":out")}
        assert own <= produced, "a prompt only quotes outputs of earlier calls"
        seen.add(call.call_id)
        produced.add(call.output_key)


@pytest.mark.parametrize("name", list(WORKLOADS))
def test_programs_are_valid_dags_and_reproducible(name: str) -> None:
    first = make_workload(name, 12, seed=3, rate=2.0)
    again = make_workload(name, 12, seed=3, rate=2.0)
    other = make_workload(name, 12, seed=4, rate=2.0)
    assert first == again
    assert first != other
    assert len({p.program_id for p in first}) == 12
    for program in first:
        _assert_dag(program)


def test_sharegpt_matches_the_papers_table() -> None:
    stats = workload_stats(sharegpt.generate(3000, seed=0))
    paper = PAPER_STATS["sharegpt"]
    assert stats.calls_mean == pytest.approx(paper.calls_mean, rel=0.10)
    assert stats.calls_max <= paper.calls_max
    assert stats.new_prefill_mean == pytest.approx(paper.prefill_mean, rel=0.05)
    assert stats.decode_mean == pytest.approx(paper.decode_mean, rel=0.05)


def test_sharegpt_history_fits_the_context_window() -> None:
    programs = sharegpt.generate(300, seed=1, max_context=8192)
    assert max(c.prompt_tokens + c.output_tokens for p in programs for c in p.calls) <= 8192


def test_lats_matches_the_papers_table() -> None:
    stats = workload_stats(lats.generate(400, seed=0))
    paper = PAPER_STATS["lats"]
    assert stats.calls_mean == pytest.approx(paper.calls_mean, rel=0.10)
    assert paper.calls_max * 0.9 <= stats.calls_max <= paper.calls_max
    assert stats.prefill_mean == pytest.approx(paper.prefill_mean, rel=0.05)
    assert stats.decode_mean == pytest.approx(paper.decode_mean, rel=0.05)


def test_lats_expands_children_in_parallel_threads() -> None:
    program = lats.generate(1, seed=0, width=5)[0]
    first_expansions = [
        c for c in program.calls if c.call_id.endswith(("i0:expand0", "i0:expand4"))
    ]
    assert len({c.thread_id for c in first_expansions}) == 2
    assert all(c.parent_ids == () for c in first_expansions)
    reflection = next(c for c in program.calls if c.call_id.endswith("i0:reflect"))
    assert len(reflection.parent_ids) == 5
    assert program.is_multi_threaded


def test_bfcl_programs_come_from_the_real_tasks() -> None:
    data = bfcl.load_data()
    assert len(data["tasks"]) == 800
    assert "Apache-2.0" in data["license"]
    programs = bfcl.generate(800, seed=0)
    assert len({p.metadata["task"] for p in programs}) == 800
    stats = workload_stats(programs)
    ground_truth_calls = sum(len(t["steps"]) + 1 for task in data["tasks"] for t in task["turns"])
    assert stats.calls_mean == pytest.approx(ground_truth_calls / 800)
    # Within 15% of the paper's calls per program; prompts carry the full tool docs.
    assert stats.calls_mean == pytest.approx(PAPER_STATS["bfcl"].calls_mean, rel=0.15)
    assert stats.prefill_mean > 2000


def test_bfcl_calls_share_the_system_prompt_and_tool_docs() -> None:
    program = bfcl.generate(1, seed=0)[0]
    heads = {c.prompt[:2] for c in program.calls}
    assert len(heads) == 1
    assert next(iter(heads))[0].key == "bfcl:system"


def test_unknown_workload_is_a_clear_error() -> None:
    with pytest.raises(UnknownWorkloadError, match="known workloads"):
        make_workload("nope", 3)
