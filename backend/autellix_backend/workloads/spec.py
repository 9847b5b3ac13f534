"""Compatibility re-export: the spec types live in ``autellix_backend.spec``, a leaf module the
simulator imports without importing the workload generators."""

from __future__ import annotations

from autellix_backend.spec import CallSpec, ProgramSpec, PromptSegment

__all__ = ["CallSpec", "ProgramSpec", "PromptSegment"]
