"""What the process table refuses and records, as callers read it (pinned by mutation testing)."""

from __future__ import annotations

import math
import re

import pytest

from autellix_backend.core import CallArrival, InvalidCallError
from autellix_protocol.snapshot import ProgramSnapshot


@pytest.mark.parametrize(
    ("arrival", "message"),
    [
        (CallArrival("", "p"), "call_id must be a non-empty string"),
        (CallArrival("c", ""), "program_id must be a non-empty string"),
        (CallArrival("c", "p", thread_id=""), "thread_id must be a non-empty string"),
        (CallArrival("c", "p", prompt_tokens=-1), "prompt_tokens must be >= 0, got -1"),
        (CallArrival("c", "p", max_tokens=-2), "max_tokens must be >= 0, got -2"),
        (CallArrival("c", "p", oracle_remaining=-0.5), "oracle_remaining must be >= 0, got -0.5"),
        (
            CallArrival("c", "p", oracle_remaining=math.nan),
            "oracle_remaining must be >= 0, got nan",
        ),
        (
            CallArrival("c", "p", snapshot=ProgramSnapshot(total_wait=-1.0)),
            "snapshot total_wait must be a finite number >= 0, got -1.0",
        ),
        (CallArrival("c", "p", parent_ids=("b", "c")), "a call cannot be its own parent"),
    ],
)
def test_a_malformed_call_is_refused_with_what_is_wrong(arrival: CallArrival, message: str) -> None:
    with pytest.raises(InvalidCallError, match=f"^{re.escape(message)}$"):
        arrival.validate()


def test_the_edges_of_a_call_are_accepted() -> None:
    CallArrival("c", "p", prompt_tokens=0, max_tokens=0, oracle_remaining=0.0).validate()
