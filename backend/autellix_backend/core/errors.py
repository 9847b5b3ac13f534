"""Typed errors of the scheduling core.

Every error is raised before any state changes, so a rejected call leaves the process
table exactly as it was.
"""

from __future__ import annotations


class AutellixError(Exception):
    """Base class of every error the core raises."""


class UnknownProgramError(AutellixError, KeyError):
    """A call or query names a program that the process table does not hold."""

    def __init__(self, program_id: str) -> None:
        super().__init__(f"unknown program {program_id!r}")
        self.program_id = program_id

    def __str__(self) -> str:
        return str(self.args[0])


class UnknownCallError(AutellixError, KeyError):
    """An update names a call that the process table does not hold."""

    def __init__(self, call_id: str) -> None:
        super().__init__(f"unknown call {call_id!r}")
        self.call_id = call_id

    def __str__(self) -> str:
        return str(self.args[0])


class DuplicateError(AutellixError, ValueError):
    """A program or call id is already in use."""


class InvalidCallError(AutellixError, ValueError):
    """A call's fields are out of range (negative token counts, bad times)."""


class InvalidTransitionError(AutellixError, ValueError):
    """A call was asked to move to a state it cannot reach from where it is."""


class UnknownPolicyError(AutellixError, ValueError):
    """A policy name that no registered policy has."""


class UnknownProfileError(AutellixError, ValueError):
    """A cost-model profile name that no registered profile has."""
