"""The measured parts of the capacity model: what one call and one program cost a gateway.

``measure_table`` and ``measure_wire`` run in process in a second; ``measure_gateway_cpu``
starts a real ``autellix serve`` with a simulated engine and reads the CPU time the server
process spent per call from ``/proc``. ``MEASURED`` holds the figures recorded in
docs/capacity.md, so ``autellix plan`` answers at once; ``autellix plan --measure`` re-measures.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import tracemalloc
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from autellix_backend.engines.base import EngineUsage
from autellix_backend.server.config import Limits
from autellix_backend.server.programs import ProgramRegistry
from autellix_backend.server.tagging import CallTags
from autellix_protocol.report import REPORT_KEY, ServiceReport
from autellix_protocol.snapshot import ProgramSnapshot
from autellix_protocol.xargs import CallTag, encode_xargs


@dataclass(frozen=True, slots=True)
class MeasuredParts:
    """Per-call and per-program costs of one gateway, measured on one machine."""

    gateway_cpu_s_per_call: float
    """CPU seconds the gateway process spends on one call (admit, route, relay, report)."""
    table_bytes_per_program: float
    """Process-table memory of a live program with one call, DAG node included."""
    table_bytes_per_node: float
    """Memory each further call (call record plus DAG node) adds to its program."""
    snapshot_bytes: int
    """The call's tag and program snapshot as ``vllm_xargs`` JSON."""
    report_bytes: int
    """The engine's service report as JSON."""


MEASURED = MeasuredParts(
    gateway_cpu_s_per_call=0.0019,
    table_bytes_per_program=3_788.0,
    table_bytes_per_node=1_133.0,
    snapshot_bytes=425,
    report_bytes=312,
)
"""Figures from ``autellix plan --measure`` on the development machine (docs/capacity.md)."""


def measure_table(num_programs: int = 2_000, calls_per_program: int = 8) -> tuple[float, float]:
    """Bytes per program (with one call) and per further call, from ``tracemalloc``."""
    one = _table_bytes(num_programs, 1)
    many = _table_bytes(num_programs, calls_per_program)
    per_node = (many - one) / (num_programs * (calls_per_program - 1))
    return one / num_programs, per_node


def _table_bytes(num_programs: int, calls_per_program: int) -> int:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        registry = ProgramRegistry("plas", Limits(), idle_timeout_s=600.0)
        for p in range(num_programs):
            parents: tuple[str, ...] = ()
            for c in range(calls_per_program):
                tags = CallTags(f"program-{p:06d}", call_id=f"call-{c:04d}", parent_ids=parents)
                _, call, _ = registry.open_call(
                    None, tags, prompt_tokens=512, max_tokens=64, choose_engine=lambda _: "e0"
                )
                registry.close_call(call, EngineUsage(512, 64, 0, 0.1), status="finished")
                parents = (f"call-{c:04d}",)
        used = tracemalloc.get_traced_memory()[0] - before
        del registry
        return used
    finally:
        tracemalloc.stop()


def measure_wire() -> tuple[int, int]:
    """Bytes of a typical call's snapshot (as ``vllm_xargs``) and of its service report."""
    tag = CallTag(
        program_id="prog-" + "0" * 32,
        thread_id="main",
        call_id="prog-" + "0" * 32 + "/call-" + "0" * 32,
        parent_ids=("prog-" + "0" * 32 + "/call-" + "1" * 32,),
        snapshot=ProgramSnapshot(12.375, 3.5, 12.375, 4.25),
    )
    report = ServiceReport(tag.call_id, "cmpl-" + "0" * 32, tag.program_id, 0.8125, 0.25, 0, 64)
    snapshot_bytes = len(json.dumps(encode_xargs(tag)))
    report_bytes = len(json.dumps({REPORT_KEY: report.as_dict()}))
    return snapshot_bytes, report_bytes


def measure_gateway_cpu(num_calls: int = 2_000, *, concurrency: int = 16) -> float:
    """CPU seconds per call of a real ``autellix serve --engine sim`` process (Linux only)."""
    import asyncio

    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "autellix_backend",
            "serve",
            "--engine",
            "sim",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base)
        asyncio.run(_drive(base, 50, concurrency))  # warm up
        before = _cpu_seconds(server.pid)
        asyncio.run(_drive(base, num_calls, concurrency))
        return (_cpu_seconds(server.pid) - before) / num_calls
    finally:
        server.terminate()
        server.wait(timeout=30)


def measure_parts(num_calls: int = 2_000) -> MeasuredParts:
    """Every part, measured now on this machine."""
    per_program, per_node = measure_table()
    snapshot_bytes, report_bytes = measure_wire()
    return replace(
        MEASURED,
        gateway_cpu_s_per_call=measure_gateway_cpu(num_calls),
        table_bytes_per_program=per_program,
        table_bytes_per_node=per_node,
        snapshot_bytes=snapshot_bytes,
        report_bytes=report_bytes,
    )


async def _drive(base: str, num_calls: int, concurrency: int) -> None:
    import asyncio

    body = {"model": "sim", "prompt": "hello there", "max_tokens": 4}
    counter = iter(range(num_calls))
    async with httpx.AsyncClient(base_url=base, timeout=60.0) as client:

        async def worker(w: int) -> None:
            for i in counter:
                headers = {"X-Autellix-Program-Id": f"p{w}-{i // 8}", "X-Autellix-Call-Id": str(i)}
                response = await client.post("/v1/completions", json=body, headers=headers)
                response.raise_for_status()

        await asyncio.gather(*(worker(w) for w in range(concurrency)))


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_ready(base: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the gateway at {base} did not become ready")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
