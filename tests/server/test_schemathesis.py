"""Property-based fuzzing of the service against its own OpenAPI schema: no 5xx, ever."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error

from autellix_backend.server import Limits, create_app
from tests.server.conftest import LiveServer, sim_config

CONFIG = sim_config(
    2, time_scale=0.0, limits=Limits(max_tokens=16, default_max_tokens=4, max_programs=200)
)
schema = schemathesis.openapi.from_dict(create_app(CONFIG).openapi())
"""The schema the service publishes at ``/openapi.json`` (checked equal below)."""


@pytest.fixture(scope="module")
def fuzzed() -> Iterator[LiveServer]:
    live = LiveServer(CONFIG).start()
    yield live
    live.stop()


def test_schema_is_the_one_served(fuzzed: LiveServer) -> None:
    served = httpx.get(f"{fuzzed.url}/openapi.json").json()
    assert served == create_app(CONFIG).openapi()


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_request_gets_a_server_error(case: schemathesis.Case[Any], fuzzed: LiveServer) -> None:
    case.call_and_validate(base_url=fuzzed.url, checks=[not_a_server_error], timeout=10)
