"""Program sessions: start, list, inspect, end, idle expiry and the table's bound."""

from __future__ import annotations

import time
from typing import Any

import httpx

from autellix_backend.server import Limits
from autellix_graph.protocol import HEADER_PROGRAM_ID
from tests.server.conftest import LiveServer, sim_config

CHAT = {"model": "sim", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}


def test_program_life_cycle(server: LiveServer) -> None:
    with server.client() as client:
        created = client.post("/v1/programs", json={"program_id": "life", "metadata": {"app": "t"}})
        assert created.status_code == 201
        assert created.json()["metadata"] == {"app": "t"}
        assert client.post("/v1/programs", json={"program_id": "life"}).status_code == 200
        r = client.post("/v1/chat/completions", json=CHAT, headers={HEADER_PROGRAM_ID: "life"})
        assert r.status_code == 200
        listed = [p["program_id"] for p in client.get("/v1/programs").json()["data"]]
        assert "life" in listed
        row = client.get("/v1/programs/life").json()
        assert row["num_calls"] == 1 and row["service"] > 0
        ended = client.delete("/v1/programs/life")
        assert ended.status_code == 200 and ended.json()["finished"]
        assert ended.json()["state"] == "finished"
        history = client.get("/v1/programs/life")
        assert history.status_code == 200
        assert history.json()["state"] == "finished"
        assert history.json()["service"] == row["service"]
        assert [c["status"] for c in history.json()["calls"]] == ["finished"]
        assert "life" not in [p["program_id"] for p in client.get("/v1/programs").json()["data"]]
        assert client.delete("/v1/programs/life").status_code == 404


def test_generated_program_id(server: LiveServer) -> None:
    with server.client() as client:
        created = client.post("/v1/programs")
        assert created.status_code == 201
        program_id = created.json()["program_id"]
        assert client.get(f"/v1/programs/{program_id}").status_code == 200
        client.delete(f"/v1/programs/{program_id}")


def test_idle_programs_are_ended(serve: Any) -> None:
    live = serve(sim_config(idle_timeout_s=0.3))
    with live.client() as client:
        client.post("/v1/programs", json={"program_id": "sleepy"})
        client.post("/v1/chat/completions", json=CHAT, headers={HEADER_PROGRAM_ID: "busy"})
        assert client.get("/v1/programs/sleepy").status_code == 200
        deadline = time.monotonic() + 5
        for program in ("sleepy", "busy"):
            while client.get(f"/v1/programs/{program}").json()["state"] == "running":
                assert time.monotonic() < deadline, f"idle program {program} was never ended"
                time.sleep(0.05)
    assert live.metric("autellix_program_latency_seconds_count") >= 2


def test_table_stays_bounded_evicting_the_least_recently_active(serve: Any) -> None:
    live = serve(sim_config(limits=Limits(max_programs=3)))
    with live.client() as client:
        for i in range(5):
            r = client.post("/v1/chat/completions", json=CHAT, headers={HEADER_PROGRAM_ID: f"p{i}"})
            assert r.status_code == 200
        ids = {p["program_id"] for p in client.get("/v1/programs").json()["data"]}
    assert ids == {"p2", "p3", "p4"}


def test_full_table_of_busy_programs_answers_429(serve: Any) -> None:
    live = serve(sim_config(limits=Limits(max_programs=1)))
    long = {**CHAT, "max_tokens": 500, "stream": True}
    with httpx.Client(base_url=live.url, timeout=30) as client:
        headers = {HEADER_PROGRAM_ID: "hog"}
        with client.stream("POST", "/v1/chat/completions", json=long, headers=headers) as busy:
            assert busy.status_code == 200
            r = client.post("/v1/chat/completions", json=CHAT, headers={HEADER_PROGRAM_ID: "late"})
            assert r.status_code == 429
            assert r.json()["error"]["code"] == "too_many_programs"
