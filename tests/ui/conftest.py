"""A real service (simulated engines, three API keys) with known programs in its table, and
a real headless Chromium (Debian's ``chromium`` package, driven by Playwright; no browser
download). Under ``CI`` a missing browser fails the run instead of skipping it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import autellix_graph
from autellix_backend.server import EngineSpec, ServerConfig
from autellix_protocol.headers import HEADER_PROGRAM_ID, HEADER_THREAD_ID
from examples import map_reduce
from examples._common import ExampleRun, RunContext
from tests._deps import missing
from tests.server.conftest import LiveServer
from tests.ui._programs import run_loop_program

KEYS = {"alice": "alice-secret", "bob": "bob-secret", "admin": "admin-secret"}
CHROMIUM = os.environ.get("AUTELLIX_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
OUTPUT_DIR = Path(os.environ.get("AUTELLIX_TEST_OUTPUT", "test-output")) / "ui"


def run_burst(server: LiveServer, num_threads: int = 8) -> str:
    """``num_threads`` threads of one program, each one long call at once."""
    program_id = "burst"

    def call(i: int) -> None:
        headers = {HEADER_PROGRAM_ID: program_id, HEADER_THREAD_ID: f"branch-{i}"}
        body = {"model": "sim", "messages": [{"role": "user", "content": f"go {i}"}]}
        with server.client(api_key=KEYS["alice"]) as client:
            response = client.post(
                "/v1/chat/completions", json={**body, "max_tokens": 200}, headers=headers
            )
            response.raise_for_status()

    with ThreadPoolExecutor(num_threads) as pool:
        list(pool.map(call, range(num_threads)))
    return program_id


@dataclass(frozen=True, slots=True)
class KnownRun:
    """The service and the programs alice ran on it."""

    server: LiveServer
    map_reduce: ExampleRun
    loop_program_id: str
    burst_program_id: str
    """Parallel long calls that overflow the engines' KV cache, so some get preempted."""

    def api(self, key: str = "alice") -> Any:
        return self.server.client(api_key=KEYS[key])


@pytest.fixture(scope="session")
def output_dir() -> Path:
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    return OUTPUT_DIR


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("playwright is not installed")
    if shutil.which(CHROMIUM) is None:
        missing(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def known_run() -> Iterator[KnownRun]:
    """Two simulated engines with little KV room (so calls wait and get preempted); alice
    runs the map-reduce example and the looping-subgraph program."""
    options = {"time_scale": 0.2, "max_num_seqs": 4, "num_kv_blocks": 20}
    engines = tuple(
        EngineSpec(kind="sim", engine_id=f"sim-{i}", model="sim", options=options) for i in range(2)
    )
    config = ServerConfig(
        engines=engines,
        api_keys=KEYS,
        admin_key="admin",
        balancer="round_robin",
        health_interval_s=0.2,
    ).validate()
    server = LiveServer(config).start()
    patch = pytest.MonkeyPatch()
    patch.setenv("AUTELLIX_API_KEY", KEYS["alice"])  # the examples' model clients read it
    autellix_graph.instrument(base_url=server.url, api_key=KEYS["alice"], sessions=False)
    try:
        ctx = RunContext(server.url, seed=3, token_scale=0.25)
        run = map_reduce.run(ctx)
        loop_id = run_loop_program(ctx)
        autellix_graph.force_flush()
    finally:
        autellix_graph.uninstrument()
        patch.undo()
    burst_id = run_burst(server)
    yield KnownRun(server, run, loop_id, burst_id)
    server.stop()
