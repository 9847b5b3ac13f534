"""The KubeRay manifest in deploy/ configures gateways that ``autellix serve`` accepts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from autellix_backend.server.config import config_from_mapping

MANIFEST = Path(__file__).parents[2] / "deploy" / "kuberay" / "raycluster.yaml"


def _documents() -> dict[str, Any]:
    return {d["kind"]: d for d in yaml.safe_load_all(MANIFEST.read_text())}


def test_every_gateway_of_the_statefulset_gets_a_valid_sharded_config() -> None:
    docs = _documents()
    template = docs["ConfigMap"]["data"]["gateway.yaml"]
    replicas = docs["StatefulSet"]["spec"]["replicas"]
    for index in range(replicas):
        pod = f"autellix-gateway-{index}"
        config = config_from_mapping(yaml.safe_load(template.replace("GATEWAY", pod)))
        assert config.sharding.self_url in config.sharding.gateways
        assert len(config.sharding.gateways) == replicas, "the ring lists every gateway"
        assert all(spec.placement == "ray" for spec in config.engines)
        assert config.ray_address and config.ray_address.startswith("ray://")


def test_the_engine_fleet_fills_the_gpu_workers_it_asks_for() -> None:
    docs = _documents()
    template = docs["ConfigMap"]["data"]["gateway.yaml"]
    config = config_from_mapping(yaml.safe_load(template.replace("GATEWAY", "autellix-gateway-0")))
    replicas = [replica for spec in config.engines for replica in spec.replicas()]
    gpus_asked = sum(spec.tensor_parallel_size for spec in replicas)
    (workers,) = docs["RayCluster"]["spec"]["workerGroupSpecs"]
    (container,) = workers["template"]["spec"]["containers"]
    gpus_per_worker = int(container["resources"]["limits"]["nvidia.com/gpu"])
    assert gpus_asked == workers["replicas"] * gpus_per_worker
    ids = {spec.engine_id for spec in replicas}
    assert len(ids) == len(replicas), "every replica has its own id"
