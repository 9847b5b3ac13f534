"""The wire protocol: codecs that round-trip, reject bad values, and need nothing but stdlib."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from autellix_protocol import (
    KEY_AWAY_S,
    KEY_TOTAL_WAIT,
    CallTag,
    NextCallHint,
    ProgramSnapshot,
    ProtocolError,
    ServiceReport,
    decode_next_call,
    decode_xargs,
    encode_next_call,
    encode_xargs,
    service_of,
)


def test_a_tag_round_trips_through_flat_string_xargs() -> None:
    tag = CallTag(
        "prog",
        thread_id="t1",
        call_id="c9",
        parent_ids=("c1", "c2"),
        snapshot=ProgramSnapshot(
            service=1.5, critical_path=2.25, total_service=3.0, total_wait=4.0
        ),
    )
    xargs = encode_xargs(tag)
    assert all(isinstance(v, str) for v in xargs.values())
    assert decode_xargs(json.loads(json.dumps(xargs)), request_id="r") == tag


def test_missing_fields_default_to_the_request_and_an_empty_snapshot() -> None:
    tag = decode_xargs({KEY_TOTAL_WAIT: 2}, request_id="req-1")
    assert (tag.program_id, tag.call_id, tag.thread_id) == ("request:req-1", "req-1", "main")
    assert tag.snapshot == ProgramSnapshot(total_wait=2.0)
    assert decode_xargs(None, request_id="r").snapshot == ProgramSnapshot()


@pytest.mark.parametrize("bad", ["-1", "inf", "nan", "x", True, [1]])
def test_a_bad_snapshot_number_is_a_protocol_error(bad: object) -> None:
    with pytest.raises(ProtocolError):
        decode_xargs({KEY_TOTAL_WAIT: bad}, request_id="r")


def test_service_reports_round_trip_and_tolerate_unknown_keys() -> None:
    report = ServiceReport("c", "r", "p", 0.75, wait=0.5, num_preemptions=2, aborted=True)
    wire = {**report.as_dict(), "program_service": 9.0}  # an older engine's extra field
    assert ServiceReport.from_dict(wire) == report
    assert service_of(wire) == 0.75
    assert service_of({"service": "n/a"}) is None and service_of(None) is None
    with pytest.raises(ProtocolError):
        ServiceReport.from_dict({"call_id": "c"})


def test_preemption_and_promotion_times_are_optional_and_survive_json() -> None:
    """Engines that time preemptions and promotions send them; older ones omit the fields."""
    report = ServiceReport(
        "c", "r", "p", 1.0, num_preemptions=2, preemptions=((0.5, 0.75), (1.0, 1.5)),
        promotions=(0.6,),
    )  # fmt: skip
    assert ServiceReport.from_dict(json.loads(json.dumps(report.as_dict()))) == report
    old = {"call_id": "c", "request_id": "r", "program_id": "p", "service": 1.0}
    assert ServiceReport.from_dict(old).preemptions == () == ServiceReport.from_dict(old).promotions
    for bad in ({"preemptions": [[1.0]]}, {"preemptions": 3}, {"promotions": ["soon"]}):
        with pytest.raises(ProtocolError):
            ServiceReport.from_dict({**old, **bad})


def test_the_package_imports_only_the_standard_library() -> None:
    code = (
        "import sys; before = set(sys.modules); import autellix_protocol;"
        "new = {m.split('.')[0] for m in set(sys.modules) - before};"
        "print(sorted(m for m in new if m not in sys.stdlib_module_names))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "['autellix_protocol']"


def test_a_calls_service_adds_its_earlier_choices_once() -> None:
    """An ``n>1`` call's last report carries the choices that ended before it; a remote
    engine's answer is read through ``service_of`` alone, so it must add them, once each."""
    first = {"request_id": "call-0", "service": 1.5}
    second = {"request_id": "call-1", "service": 2.0, "siblings": [first]}
    last = {"request_id": "call-2", "service": 0.5, "siblings": [first, second, first]}
    assert service_of(last) == 4.0
    assert service_of({"request_id": "call-0", "service": 1.0}) == 1.0


def test_a_next_call_hint_round_trips_and_is_absent_by_default() -> None:
    hint = NextCallHint(tool="search", away_s=2.5)
    assert decode_next_call(encode_next_call(hint)) == hint
    assert decode_next_call({**encode_xargs(CallTag("p")), KEY_AWAY_S: 3}).away_s == 3.0
    assert not decode_next_call(encode_xargs(CallTag("p"))).follows
    assert NextCallHint(tool="t").follows and NextCallHint(away_s=0.0).follows
    with pytest.raises(ProtocolError):
        decode_next_call({KEY_AWAY_S: "-1"})
