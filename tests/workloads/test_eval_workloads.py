"""The evaluation's extra workloads: BFCL fitted to the paper's row, and skewed critical paths."""

from __future__ import annotations

import pytest

from autellix_backend.workloads import PAPER_STATS, bfcl_paper, skewed, workload_stats


def test_bfcl_paper_matches_the_papers_table() -> None:
    stats = workload_stats(bfcl_paper.generate(3000, seed=0))
    paper = PAPER_STATS["bfcl"]
    assert stats.calls_mean == pytest.approx(paper.calls_mean, rel=0.05)
    assert stats.calls_max <= paper.calls_max
    assert stats.prefill_mean == pytest.approx(paper.prefill_mean, rel=0.05)
    assert stats.decode_mean == pytest.approx(paper.decode_mean, rel=0.05)


def test_skewed_programs_join_branches_of_very_different_path_lengths() -> None:
    for program in skewed.generate(20, seed=1):
        path: dict[str, int] = {}
        for call in program.calls:
            start = max((path[p] for p in call.parent_ids), default=0)
            path[call.call_id] = start + call.output_tokens
        join = program.calls[-1]
        ends = sorted(path[p] for p in join.parent_ids)
        assert len(ends) >= 3
        assert ends[-1] >= 2 * ends[0], (program.program_id, ends)
