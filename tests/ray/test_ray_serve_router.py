"""Ray Serve with ``AutellixRequestRouter``: two replicas of a simulated deployment on a local
Ray instance; a program's long calls stay on one replica, short calls go anywhere."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests._deps import require

require("ray.serve", install="pip install 'autellix[ray]'")

import ray  # noqa: E402
from ray import serve  # noqa: E402
from ray.serve.config import RequestRouterConfig  # noqa: E402

from autellix_integrations.ray_serve import AutellixRequestRouter  # noqa: E402


@serve.deployment(
    num_replicas=2,
    ray_actor_options={"num_cpus": 0.5},
    request_router_config=RequestRouterConfig(
        request_router_class=AutellixRequestRouter,  # type: ignore[arg-type]
        request_router_kwargs={"threshold": 64},
    ),
)
class EchoReplica:
    """A stand-in for an LLM replica: answers with its own replica id."""

    def __call__(self, body: dict[str, Any]) -> str:
        return str(serve.get_replica_context().replica_id.unique_id)


@pytest.fixture(scope="module")
def handle() -> Iterator[Any]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        app = EchoReplica.bind()  # type: ignore[attr-defined]
        yield serve.run(app, name="autellix-router-test")
    finally:
        serve.shutdown()  # type: ignore[no-untyped-call]
        ray.shutdown()


def _body(program: str, words: int) -> dict[str, Any]:
    return {
        "model": "m",
        "prompt": "history " * words,
        "vllm_xargs": {"autellix_program_id": program},
    }


def test_long_calls_of_a_program_stay_on_its_replica(handle: Any) -> None:
    for p in range(6):
        replicas = {handle.remote(_body(f"program-{p}", 200)).result() for _ in range(5)}
        assert len(replicas) == 1, f"program-{p}'s long calls moved: {replicas}"


def test_short_calls_spread_over_the_replicas(handle: Any) -> None:
    responses = [handle.remote(_body(f"short-{i}", 2)) for i in range(40)]
    assert len({r.result() for r in responses}) == 2
