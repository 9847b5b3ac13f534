"""API keys as the gateway checks them, without a server: which header names which key."""

from __future__ import annotations

import pytest

from autellix_backend.server.auth import KeyRing
from autellix_backend.server.errors import APIError


def test_a_bearer_token_names_its_key_whatever_the_spacing_and_case() -> None:
    ring = KeyRing({"alice": "sk-alice", "bob": "sk-bob"})
    assert ring.enabled
    assert ring.principal("Bearer sk-alice") == "alice"
    assert ring.principal("bearer  sk-bob ") == "bob"
    with pytest.raises(APIError) as error:
        ring.principal("Bearer sk-alice sk-bob")
    assert (error.value.status, error.value.message) == (401, "invalid API key")


def test_without_keys_every_request_is_anonymous() -> None:
    ring = KeyRing({})
    assert not ring.enabled
    assert ring.principal(None) is None
    assert ring.principal("Bearer anything") is None
