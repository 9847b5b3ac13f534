"""API keys: programs belong to the key that started them; other keys cannot see or touch them."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from autellix_graph.protocol import HEADER_CALL_ID, HEADER_PROGRAM_ID
from tests.server.conftest import LiveServer, sim_config

CHAT = {"model": "sim", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
KEYS = {"alice": "sk-alice-secret", "bob": "sk-bob-secret"}


@pytest.fixture
def secured(serve: Any) -> LiveServer:
    live: LiveServer = serve(sim_config(api_keys=KEYS))
    return live


@pytest.mark.parametrize("key", [None, "sk-wrong"])
def test_requests_without_a_valid_key_are_401(secured: LiveServer, key: str | None) -> None:
    with secured.client(api_key=key) as client:
        for method, path in [
            ("GET", "/v1/models"),
            ("GET", "/v1/programs"),
            ("POST", "/v1/programs"),
        ]:
            r = client.request(method, path)
            assert r.status_code == 401, (method, path)
            assert r.json()["error"]["type"] == "authentication_error"
        assert client.post("/v1/chat/completions", json=CHAT).status_code == 401


def test_operations_endpoints_need_no_key(secured: LiveServer) -> None:
    with secured.client() as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/metrics").status_code == 200


def test_another_key_can_neither_see_nor_touch_a_program(secured: LiveServer) -> None:
    alice = secured.client(api_key=KEYS["alice"])
    bob = secured.client(api_key=KEYS["bob"])
    assert alice.post("/v1/programs", json={"program_id": "secret-plan"}).status_code == 201
    headers = {HEADER_PROGRAM_ID: "secret-plan", HEADER_CALL_ID: "c1"}
    assert alice.post("/v1/chat/completions", json=CHAT, headers=headers).status_code == 200
    before = alice.get("/v1/programs/secret-plan").json()

    assert bob.get("/v1/programs/secret-plan").status_code == 404
    assert bob.delete("/v1/programs/secret-plan").status_code == 404
    assert "secret-plan" not in [p["program_id"] for p in bob.get("/v1/programs").json()["data"]]
    # Bob's call with the same ids opens Bob's own program; Alice's row does not change.
    assert bob.post("/v1/chat/completions", json=CHAT, headers=headers).status_code == 200
    assert bob.get("/v1/programs/secret-plan").json()["owner"] == "bob"
    after = alice.get("/v1/programs/secret-plan").json()
    assert after["calls"] == before["calls"] and after["owner"] == "alice"
    alice.close()
    bob.close()


@pytest.mark.parametrize(
    ("authorization", "message"),
    [
        (None, "missing API key: send 'Authorization: Bearer <key>'"),
        (f"Basic {KEYS['alice']}", "malformed Authorization header: expected 'Bearer <key>'"),
        ("Bearer", "malformed Authorization header: expected 'Bearer <key>'"),
        ("Bearer sk-nobody", "invalid API key"),
    ],
)
def test_a_refused_key_says_why(
    secured: LiveServer, authorization: str | None, message: str
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    r = httpx.get(f"{secured.url}/v1/programs", headers=headers)
    assert r.status_code == 401
    error = r.json()["error"]
    assert error == {**error, "message": message, "code": "invalid_api_key"}
    assert error["type"] == "authentication_error"


def test_the_bearer_scheme_is_case_insensitive(secured: LiveServer) -> None:
    r = httpx.get(f"{secured.url}/v1/programs", headers={"Authorization": f"bearer {KEYS['bob']}"})
    assert r.status_code == 200


def test_starting_and_ending_a_program_is_scoped_by_key(secured: LiveServer) -> None:
    with secured.client(api_key=KEYS["alice"]) as alice, secured.client(api_key=KEYS["bob"]) as bob:
        first = alice.post("/v1/programs", json={"program_id": "mine", "metadata": {"team": "a"}})
        second = bob.post("/v1/programs", json={"program_id": "mine"})
        assert (first.status_code, second.status_code) == (201, 201)
        assert alice.get("/v1/programs/mine").json()["metadata"] == {"team": "a"}
        assert bob.get("/v1/programs/mine").json()["metadata"] == {}
        assert bob.delete("/v1/programs/mine").status_code == 200
        assert alice.get("/v1/programs/mine").json()["state"] == "running"
