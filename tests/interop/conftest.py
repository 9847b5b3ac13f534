"""A real Arize Phoenix server on loopback, for the interop tests (``make interop``).

Phoenix lives in its own virtual environment (``.venv-interop``, made by ``make interop``): it
is a separate server, like Jaeger, and its many pins would otherwise move the backend's. The
tests are collected only with ``AUTELLIX_INTEROP=1`` (what ``make interop`` sets), so
``make test`` neither needs Phoenix nor reports skips; with it set, a missing Phoenix fails.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.graph._support import free_port
from tests.ui.conftest import browser  # noqa: F401  (the UI tests' headless Chromium)

ENV_INTEROP = "AUTELLIX_INTEROP"
ENV_PHOENIX_PYTHON = "AUTELLIX_PHOENIX_PYTHON"
"""Python of the environment Phoenix is installed in (default ``.venv-interop/bin/python``)."""
_ROOT = Path(__file__).resolve().parents[2]
_LAUNCHER = Path(__file__).with_name("phoenix_loopback.py")
_START_TIMEOUT = 300.0
"""Seconds Phoenix may take to migrate its database and start (about 90 on a busy 2-core box)."""

if os.environ.get(ENV_INTEROP) != "1":
    collect_ignore_glob = ["test_*.py"]


@dataclass(frozen=True, slots=True)
class Phoenix:
    """A running Phoenix: its HTTP root (UI, REST, GraphQL, OTLP/HTTP) and gRPC port."""

    url: str
    grpc_port: int
    pid: int

    @property
    def otlp_endpoint(self) -> str:
        return f"{self.url}/v1/traces"


def _python() -> str:
    python = os.environ.get(ENV_PHOENIX_PYTHON) or str(_ROOT / ".venv-interop" / "bin" / "python")
    if not Path(python).exists() and shutil.which(python) is None:
        pytest.fail(f"no Phoenix environment at {python}: run `make interop`", pytrace=False)
    return python


@pytest.fixture(scope="session")
def phoenix() -> Iterator[Phoenix]:
    """Phoenix on 127.0.0.1 with a fresh SQLite database, stopped after the session."""
    port, grpc_port = free_port(), free_port()
    workdir = tempfile.mkdtemp(prefix="autellix-phoenix-")
    env = {
        **os.environ,
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(grpc_port),
        "PHOENIX_WORKING_DIR": workdir,
        "PHOENIX_LOG_MIGRATIONS": "false",
        "PHOENIX_DB_LOGGING_LEVEL": "warning",
    }
    log = Path(workdir) / "phoenix.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [_python(), str(_LAUNCHER)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, log)
        yield Phoenix(url, grpc_port, process.pid)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Phoenix exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    pytest.fail(f"Phoenix did not start in {_START_TIMEOUT:.0f} s:\n{log.read_text()[-4000:]}")
