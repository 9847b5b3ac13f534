"""The ``X-Autellix-*`` tag headers a client sends: what is read, and what is refused with 400."""

from __future__ import annotations

import pytest

from autellix_backend.server.errors import APIError
from autellix_backend.server.tagging import CallTags, check_id, tags_from_headers
from autellix_protocol.headers import (
    HEADER_CALL_ID,
    HEADER_PARENT_IDS,
    HEADER_PROGRAM_ID,
    HEADER_THREAD_ID,
)


def _refused(headers: dict[str, str], max_id_length: int = 64) -> APIError:
    with pytest.raises(APIError) as error:
        tags_from_headers(headers, max_id_length=max_id_length)
    assert (error.value.status, error.value.code) == (400, "invalid_value")
    return error.value


def test_every_tag_is_read_trimmed_and_parents_deduplicated_in_order() -> None:
    tags = tags_from_headers(
        {
            HEADER_PROGRAM_ID: " prog-1 ",
            HEADER_THREAD_ID: "worker",
            HEADER_CALL_ID: "c9",
            HEADER_PARENT_IDS: " c2 , c1,, c2 ,c3 ",
        },
        max_id_length=64,
    )
    assert tags == CallTags(
        program_id="prog-1", thread_id="worker", call_id="c9", parent_ids=("c2", "c1", "c3")
    )


def test_an_untagged_call_has_no_program_and_runs_on_the_main_thread() -> None:
    assert tags_from_headers({}, max_id_length=64) == CallTags(
        program_id=None, thread_id="main", call_id=None, parent_ids=()
    )
    blank = {HEADER_PROGRAM_ID: "  ", HEADER_THREAD_ID: "", HEADER_PARENT_IDS: " , "}
    assert tags_from_headers(blank, max_id_length=64) == CallTags()


def test_ids_use_printable_ascii_without_spaces_or_commas() -> None:
    edge = "!+-~" + "".join(chr(c) for c in range(0x2E, 0x7F))
    assert tags_from_headers({HEADER_PROGRAM_ID: edge}, max_id_length=200).program_id == edge
    for header in (HEADER_PROGRAM_ID, HEADER_CALL_ID):
        for bad in ("a b", "a,b", "caf\u00e9", "a\x7fb", "a\x1fb"):
            error = _refused({header: bad})
            assert error.message == f"{header} must be printable ASCII with no spaces or commas"
            assert error.param == header


def test_ids_up_to_the_configured_length_are_accepted() -> None:
    tags = tags_from_headers({HEADER_THREAD_ID: "t" * 8}, max_id_length=8)
    assert tags.thread_id == "t" * 8
    error = _refused({HEADER_THREAD_ID: "t" * 9}, max_id_length=8)
    assert error.message == f"{HEADER_THREAD_ID} is longer than 8 characters"
    assert error.param == HEADER_THREAD_ID
    assert _refused({HEADER_PARENT_IDS: "ok,parent-09"}, max_id_length=8).param == HEADER_PARENT_IDS


def test_a_call_may_name_up_to_256_parents() -> None:
    parents = ",".join(f"c{i}" for i in range(256))
    tags = tags_from_headers({HEADER_PARENT_IDS: parents}, max_id_length=64)
    assert len(tags.parent_ids) == 256
    error = _refused({HEADER_PARENT_IDS: parents + ",c256"})
    assert error.message == f"{HEADER_PARENT_IDS} names more than 256 calls"


def test_a_call_cannot_be_its_own_parent() -> None:
    error = _refused({HEADER_CALL_ID: "c1", HEADER_PARENT_IDS: "c0, c1"})
    assert (error.message, error.param) == ("a call cannot be its own parent", HEADER_PARENT_IDS)


def test_an_id_in_a_request_body_must_not_be_empty() -> None:
    assert check_id(" p1 ", "program_id", 64) == "p1"
    with pytest.raises(APIError) as malformed:
        check_id("p 1", "program_id", 64)
    assert malformed.value.message == "program_id must be printable ASCII with no spaces or commas"
    with pytest.raises(APIError) as error:
        check_id("  ", "program_id", 64)
    assert (error.value.status, error.value.message, error.value.param) == (
        400,
        "program_id must not be empty",
        "program_id",
    )
