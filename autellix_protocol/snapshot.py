"""The frozen view of a program that travels with each of its calls to an engine.

The front end's process table is the only owner of program state. An engine's queue ranks a
call by the snapshot it arrived with (refreshed while the call waits, where the engine can be
reached) and never keeps program rows of its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class ProtocolError(ValueError):
    """A value on the wire is malformed (bad number, wrong type)."""


@dataclass(frozen=True, slots=True)
class ProgramSnapshot:
    """One program's state as its front end saw it when the snapshot was taken.

    >>> ProgramSnapshot(service=1.5, total_service=1.5).critical_path
    0.0
    """

    service: float = 0.0
    """The program's scalar priority: summed service (PLAS) or longest critical path (ATLAS)."""
    critical_path: float = 0.0
    """The call's own critical-path priority from its parents (exact-DAG ATLAS)."""
    total_service: float = 0.0
    """T_program: service of the program's closed calls (anti-starvation input)."""
    total_wait: float = 0.0
    """W_program: waiting time of the program's closed calls (anti-starvation input)."""

    def validate(self) -> None:
        """Raise ``ProtocolError`` unless every field is a finite number >= 0."""
        for name in ("service", "critical_path", "total_service", "total_wait"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise ProtocolError(f"snapshot {name} must be a finite number >= 0, got {value!r}")


ZERO_SNAPSHOT = ProgramSnapshot()
"""A program the engine knows nothing about (a stock client): every call starts in Q1."""
