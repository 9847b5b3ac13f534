"""Workloads: program generators for the simulator, the bench command and real engines."""

from __future__ import annotations

from autellix_backend.workloads.spec import CallSpec, ProgramSpec, PromptSegment

__all__ = ["CallSpec", "ProgramSpec", "PromptSegment"]
