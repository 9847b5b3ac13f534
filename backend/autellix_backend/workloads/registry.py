"""Workloads by name, with their arrivals applied."""

from __future__ import annotations

from collections.abc import Callable

from autellix_backend.workloads import (
    bfcl,
    bfcl_paper,
    bfcl_tools,
    lats,
    mixed,
    sharegpt,
    skewed,
)
from autellix_backend.workloads.arrivals import ArrivalMode, arrival_times, with_arrivals
from autellix_backend.workloads.spec import ProgramSpec

Generator = Callable[..., list[ProgramSpec]]

WORKLOADS: dict[str, Generator] = {
    sharegpt.NAME: sharegpt.generate,
    bfcl.NAME: bfcl.generate,
    bfcl_paper.NAME: bfcl_paper.generate,
    bfcl_tools.NAME: bfcl_tools.generate,
    lats.NAME: lats.generate,
    mixed.NAME: mixed.generate,
    skewed.NAME: skewed.generate,
}
"""Every workload generator, keyed by name; each takes ``(num_programs, *, seed)``."""


class UnknownWorkloadError(ValueError):
    """A workload name that no generator answers to."""


def make_workload(
    name: str,
    num_programs: int,
    *,
    seed: int = 0,
    arrivals: ArrivalMode | str = ArrivalMode.POISSON,
    rate: float = 1.0,
    burst_size: int = 8,
) -> list[ProgramSpec]:
    """``num_programs`` programs of workload ``name`` arriving by ``arrivals`` at ``rate``/s.

    Raises:
        UnknownWorkloadError: ``name`` is not one of ``WORKLOADS``.
    """
    generator = WORKLOADS.get(name)
    if generator is None:
        raise UnknownWorkloadError(
            f"unknown workload {name!r}; known workloads: {', '.join(WORKLOADS)}"
        )
    if num_programs < 1:
        raise ValueError("num_programs must be at least 1")
    programs = generator(num_programs, seed=seed)
    times = arrival_times(num_programs, arrivals, rate=rate, seed=seed, burst_size=burst_size)
    return with_arrivals(programs, times)
