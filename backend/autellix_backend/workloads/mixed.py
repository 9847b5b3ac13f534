"""Mixed: equal parts ShareGPT chat, BFCL tool use and LATS tree search, shuffled together."""

from __future__ import annotations

import numpy as np

from autellix_backend.workloads import bfcl, lats, sharegpt
from autellix_backend.workloads.spec import ProgramSpec

NAME = "mixed"


def generate(num_programs: int, *, seed: int = 0) -> list[ProgramSpec]:
    """``num_programs`` programs, a third of each workload (the remainder goes to the first ones).

    Args:
        num_programs: How many programs in all.
        seed: Equal seeds give equal workloads.
    """
    share, extra = divmod(num_programs, 3)
    parts = [
        sharegpt.generate(share + (extra > 0), seed=seed),
        bfcl.generate(share + (extra > 1), seed=seed),
        lats.generate(share, seed=seed),
    ]
    programs = [p for part in parts for p in part]
    order = np.random.default_rng([seed, 0x313D]).permutation(len(programs))
    return [programs[i] for i in order]
