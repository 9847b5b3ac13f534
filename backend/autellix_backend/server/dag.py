"""Compatibility re-export: the program DAG lives in the process table (``core.dag``)."""

from __future__ import annotations

from autellix_backend.core.dag import DagNode, ProgramDag

__all__ = ["DagNode", "ProgramDag"]
