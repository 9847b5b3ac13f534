"""Placement groups on a local Ray instance: replicas of one engine entry share a group.

The instance declares 4 GPUs that this machine does not have (Ray counts them as resources
and hands out their ids), so the groups a GPU config asks for are reserved as on a GPU node;
tensor-parallel vLLM itself cannot run here, only its reservation and its vLLM arguments.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from tests._deps import require

require("ray", install="pip install 'autellix[ray]'")

import ray  # noqa: E402
from ray.util import placement_group_table, remove_placement_group  # noqa: E402

from autellix_backend.engines.ray_engine import NAMESPACE, RayEngine  # noqa: E402
from autellix_backend.server import EngineSpec, ServerConfig  # noqa: E402
from autellix_backend.server.config import ConfigError, config_from_mapping  # noqa: E402
from autellix_backend.server.engine_factory import build_engines, engine_options  # noqa: E402
from tests.server.conftest import LiveServer  # noqa: E402


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(
        num_cpus=4, num_gpus=4, namespace=NAMESPACE, include_dashboard=False, log_to_driver=False
    )
    try:
        yield
    finally:
        ray.shutdown()


def test_tensor_parallel_replicas_reserve_a_bundle_of_gpus_each(cluster: None) -> None:
    spec = EngineSpec(
        kind="local_vllm",
        engine_id="llama",
        model="meta-llama/Meta-Llama-3-8B-Instruct",
        placement="ray",
        resources={"CPU": 1, "GPU": 1},
        num_engines=2,
        tensor_parallel_size=2,
    )
    engines = build_engines(ServerConfig(engines=(spec,)).validate())
    assert [e.engine_id for e in engines] == ["llama-0", "llama-1"]
    assert all(isinstance(e, RayEngine) for e in engines)
    first, second = (e for e in engines if isinstance(e, RayEngine))
    assert first.group is second.group is not None
    assert (first.bundle_index, second.bundle_index) == (0, 1)
    assert first.resources == {"CPU": 1, "GPU": 2}, "an actor asks for its whole bundle"
    replica = first._build.args[0]
    assert engine_options(replica)["engine_args"] == {
        "tensor_parallel_size": 2,
        "distributed_executor_backend": "mp",
    }

    group = asyncio.run(first.group.ready())
    try:
        table = placement_group_table(group)
        assert table["name"] == "autellix-llama"
        assert table["state"] == "CREATED"
        assert table["strategy"] == "PACK"
        assert table["bundles"] == {0: {"CPU": 1.0, "GPU": 2.0}, 1: {"CPU": 1.0, "GPU": 2.0}}
        assert ray.available_resources().get("GPU", 0) == 0, "the 4 GPUs are reserved"
    finally:
        remove_placement_group(group)


def test_a_replica_that_cannot_be_placed_says_what_it_asked_for(cluster: None) -> None:
    spec = EngineSpec(kind="local_vllm", engine_id="big", placement="ray", tensor_parallel_size=8)
    (engine,) = build_engines(ServerConfig(engines=(spec,)).validate())
    assert isinstance(engine, RayEngine) and engine.group is not None
    engine.group.timeout = 2.0
    with pytest.raises(Exception, match=r"could not reserve \[\{'CPU': 1, 'GPU': 8\.0\}\]"):
        asyncio.run(engine.start())
    remove_placement_group(ray.util.get_placement_group("autellix-big"))


def test_replicas_run_in_their_bundles_behind_the_gateway(cluster: None) -> None:
    spec = EngineSpec(
        kind="sim",
        engine_id="rep",
        model="sim",
        options={"time_scale": 0.2},
        placement="ray",
        resources={"CPU": 1, "GPU": 1},
        num_engines=2,
    )
    config = ServerConfig(engines=(spec,), balancer="round_robin").validate()
    live = LiveServer(config).start(timeout=120)
    try:
        served = set()
        for i in range(4):
            response = httpx.post(
                f"{live.url}/v1/completions",
                json={"model": "sim", "prompt": "hello", "max_tokens": 8},
                headers={"X-Autellix-Program-Id": f"rep-program-{i}"},
                timeout=60,
            )
            assert response.status_code == 200, response.text
            assert response.json()["usage"]["completion_tokens"] == 8
            served.add(response.headers["X-Autellix-Engine-Id"])
        assert served == {"rep-0", "rep-1"}
        group = ray.util.get_placement_group("autellix-rep")
        where = [
            ray.get(ray.get_actor(f"autellix-rep-{i}", namespace=NAMESPACE).placement.remote())
            for i in range(2)
        ]
        assert {w["placement_group_id"] for w in where} == {group.id.hex()}
        assert [len(w["gpu_ids"]) for w in where] == [1, 1]
        assert where[0]["gpu_ids"] != where[1]["gpu_ids"], "each replica has its own GPU"
    finally:
        live.stop()


def test_replica_settings_are_checked_and_local_replicas_are_engines_too() -> None:
    engines = build_engines(
        ServerConfig(engines=(EngineSpec(kind="sim", engine_id="s", num_engines=3),)).validate()
    )
    assert [e.engine_id for e in engines] == ["s-0", "s-1", "s-2"]
    assert not any(isinstance(e, RayEngine) for e in engines)
    bad = {
        "num_engines and tensor_parallel_size must be >= 1": {"num_engines": 0},
        "tensor_parallel_size applies to local_vllm": {"tensor_parallel_size": 2},
        "placement_strategy must be one of": {"placement_strategy": "FAST"},
    }
    for message, values in bad.items():
        with pytest.raises(ConfigError, match=message):
            config_from_mapping({"engines": [{"kind": "sim", **values}]})
    with pytest.raises(ConfigError, match="engine ids must be unique"):
        replicas = {"kind": "sim", "id": "a", "num_engines": 2}
        config_from_mapping({"engines": [replicas, {"kind": "sim", "id": "a-1"}]})
