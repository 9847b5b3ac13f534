"""The OpenAI-compatible API, used through the official OpenAI SDK and plain HTTP."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from autellix_graph.protocol import (
    HEADER_CALL_ID,
    HEADER_PARENT_IDS,
    HEADER_PROGRAM_ID,
    HEADER_THREAD_ID,
)
from tests.server.conftest import LiveServer


def _sdk(server: LiveServer, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", default_headers=headers)


def test_chat_completion_through_the_openai_sdk(server: LiveServer) -> None:
    reply = _sdk(server).chat.completions.create(
        model="sim", messages=[{"role": "user", "content": "Plan a trip"}], max_tokens=7
    )
    assert reply.choices[0].message.role == "assistant"
    assert len((reply.choices[0].message.content or "").split()) == 7
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 7
    assert reply.usage.prompt_tokens > 0


def test_streamed_chat_matches_the_whole_answer(server: LiveServer) -> None:
    stream = _sdk(server).chat.completions.create(
        model="sim",
        messages=[{"role": "user", "content": "Stream please"}],
        max_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(text.split()) == 6
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 6


def test_text_completion_streamed_and_not(server: LiveServer) -> None:
    sdk = _sdk(server)
    whole = sdk.completions.create(model="sim", prompt="Once upon a time", max_tokens=4)
    assert len(whole.choices[0].text.split()) == 4
    pieces = list(sdk.completions.create(model="sim", prompt="Hi", max_tokens=3, stream=True))
    assert len("".join(p.choices[0].text for p in pieces).split()) == 3


def test_models_lists_the_served_model(server: LiveServer) -> None:
    assert [m.id for m in _sdk(server).models.list()] == ["sim"]


def test_untagged_calls_are_programs_of_their_own_and_leave_no_row(server: LiveServer) -> None:
    with server.client() as client:
        before = {p["program_id"] for p in client.get("/v1/programs").json()["data"]}
        ids = []
        for _ in range(2):
            r = client.post(
                "/v1/completions", json={"model": "sim", "prompt": "x", "max_tokens": 2}
            )
            assert r.status_code == 200
            ids.append(r.headers["X-Autellix-Program-Id"])
        after = {p["program_id"] for p in client.get("/v1/programs").json()["data"]}
    assert after == before
    assert len(set(ids)) == 2
    assert all(i.startswith("anon-") for i in ids)


def test_tagged_calls_build_the_program_row_and_raise_its_priority(server: LiveServer) -> None:
    program = "trip-planner"
    with server.client() as client:
        first = _tagged_call(client, program, "plan", "main", ())
        assert first.status_code == 200
        _tagged_call(client, program, "flights", "t1", ("plan",))
        _tagged_call(client, program, "hotels", "t2", ("plan",))
        row = client.get(f"/v1/programs/{program}").json()
    calls = {c["call_id"]: c for c in row["calls"]}
    assert set(calls) == {"plan", "flights", "hotels"}
    assert calls["plan"]["priority"] == 0.0
    # PLAS: each call starts from the service its program had attained when it arrived; the
    # calls ran one after another, so that is the sum of the earlier calls' service.
    assert calls["plan"]["service"] > 0 and calls["flights"]["service"] > 0
    assert calls["flights"]["priority"] == pytest.approx(calls["plan"]["service"])
    assert calls["hotels"]["priority"] == pytest.approx(
        calls["plan"]["service"] + calls["flights"]["service"]
    )
    assert row["service"] == sum(c["service"] for c in calls.values())
    assert {t["thread_id"] for t in row["threads"]} == {"main", "t1", "t2"}
    edges = {(e["source"], e["target"]) for e in row["dag"]["edges"]}
    assert edges == {("plan", "flights"), ("plan", "hotels")}
    assert all(c["status"] == "finished" for c in calls.values())


def test_sse_ends_with_done(server: LiveServer) -> None:
    body = {"model": "sim", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
    with httpx.stream(
        "POST", f"{server.url}/v1/chat/completions", json={**body, "stream": True}
    ) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [line[len("data: ") :] for line in r.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    assert all(json.loads(e)["object"] == "chat.completion.chunk" for e in events[:-1])


def _tagged_call(
    client: httpx.Client, program: str, call: str, thread: str, parents: tuple[str, ...]
) -> httpx.Response:
    headers = {HEADER_PROGRAM_ID: program, HEADER_CALL_ID: call, HEADER_THREAD_ID: thread}
    if parents:
        headers[HEADER_PARENT_IDS] = ",".join(parents)
    body = {"model": "sim", "messages": [{"role": "user", "content": call}], "max_tokens": 4}
    return client.post("/v1/chat/completions", json=body, headers=headers)


def test_call_ids_are_scoped_by_program(server: LiveServer) -> None:
    body = {**_LONG_STREAM}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        a = {HEADER_PROGRAM_ID: "scope-a", HEADER_CALL_ID: "c0"}
        b = {HEADER_PROGRAM_ID: "scope-b", HEADER_CALL_ID: "c0"}
        with client.stream("POST", "/v1/chat/completions", json=body, headers=a) as first:
            second = client.post("/v1/chat/completions", json={**body, "stream": False}, headers=b)
            assert first.status_code == 200 and second.status_code == 200
        rows = [client.get(f"/v1/programs/{p}").json() for p in ("scope-a", "scope-b")]
    assert [[c["call_id"] for c in row["calls"]] for row in rows] == [["c0"], ["c0"]]


_LONG_STREAM = {
    "model": "sim",
    "messages": [{"role": "user", "content": "x"}],
    "max_tokens": 50,
    "stream": True,
}
