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
