"""Issue 4's bar to beat: FCFS vs client-side priority vs Autellix inside vLLM, one run.

    python benchmarks/real_engine/bench.py [--runs 3] [--max-num-seqs 4] [--out results.json]
    python benchmarks/real_engine/bench.py --device cuda [--runs 2] [--out gpu.json]

Same engine settings for every variant:

- ``fcfs``: stock vLLM, ``--scheduling-policy fcfs``;
- ``client_priority``: stock vLLM, ``--scheduling-policy priority``, each request's priority =
  the tokens its program has generated so far (what a client can do alone);
- ``autellix``: the Autellix plugin (PLAS; ATLAS for the map-reduce mix), the program's
  service tracked as the backend does, on vLLM's synchronous ``Scheduler``
  (``async_scheduling=False``: what any plain ``Scheduler`` subclass costs a GPU);
- ``autellix_async``: the same plugin left to vLLM's own choice, which on a GPU is async
  scheduling, so the plugin runs as ``AutellixAsyncScheduler`` (GPU only: vLLM's CPU platform
  turns async scheduling off for every scheduler);
- ``fcfs_gateway``: stock vLLM FCFS (plugin off) behind the Autellix gateway: an
  ``autellix serve`` process with one ``local_vllm`` engine, the client sending each call's
  program headers over HTTP; against ``fcfs`` it measures the gateway hop alone;
- ``autellix_gateway``: the same with the plugin on: Autellix as deployed (the gateway keeps
  the process table, the plugin schedules), against ``fcfs`` the whole light-load tax.

The in-process variants replay straight into ``LocalVLLMEngine`` (the replay keeps the
process table); the gateway variants' client runs in this process, the gateway and its engine
in the server's.

The stock variants also run with vLLM's own choice (async on a GPU). ``--device cpu`` (the
default) serves the tiny local model; ``--device cuda`` a dummy-weight model with
Llama-3.1-8B's layer shapes (see ``GPU_MODEL``), with CUDA graphs.

Metric: mean over programs of latency / generated tokens (s/token); median of ``--runs``.
Runs interleave the variants (run 1 of each, then run 2 of each...). The last line gives the
light-load ratios, stock FCFS / each Autellix variant (1.00x: no tax; below 1: slower).
Must run under ``if __name__ == "__main__"`` (vLLM starts engine processes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autellix_backend.calibration.workloads import WORKLOADS, burst, poisson_mix
from autellix_backend.core import Policy, SchedulerConfig
from autellix_backend.drivers.replay import PriorityHint, ReplayResult, replay
from autellix_backend.engines.base import (
    EngineAdapter,
    EngineChunk,
    EngineError,
    EngineLoad,
    EngineRequest,
    EngineUsage,
)
from autellix_backend.engines.local_vllm import LocalVLLMEngine
from autellix_backend.models import TinyModelSpec, default_cache_dir, ensure_tiny_model
from autellix_backend.sim.results import percentile
from autellix_protocol import (
    HEADER_CALL_ID,
    HEADER_PARENT_IDS,
    HEADER_PROGRAM_ID,
    HEADER_THREAD_ID,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from autellix_backend.spec import ProgramSpec


@dataclass(frozen=True, slots=True)
class Variant:
    name: str
    plugin: bool
    scheduling_policy: str
    hint: PriorityHint
    async_scheduling: bool | None = None
    """vLLM's ``async_scheduling`` engine argument; None leaves the choice to vLLM."""
    gpu_only: bool = False
    gateway: bool = False
    """Behind an ``autellix serve`` gateway process, called over HTTP with program headers."""


VARIANTS = (
    Variant("fcfs", False, "fcfs", PriorityHint.NONE),
    Variant("client_priority", False, "priority", PriorityHint.TOKENS),
    Variant("autellix", True, "fcfs", PriorityHint.SERVICE, async_scheduling=False),
    Variant("autellix_async", True, "fcfs", PriorityHint.SERVICE, gpu_only=True),
    Variant("fcfs_gateway", False, "fcfs", PriorityHint.NONE, gateway=True),
    Variant(
        "autellix_gateway", True, "fcfs", PriorityHint.NONE, async_scheduling=False, gateway=True
    ),
)
TAXED = ("fcfs_gateway", "autellix", "autellix_gateway", "autellix_async")
"""Variants whose cost at light load is compared with stock ``fcfs``."""

GPU_MODEL = TinyModelSpec(
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    max_position_embeddings=8192,
    dtype="bfloat16",
)
"""Llama-3.1-8B's layers (32 x hidden 4096, GQA 32/8, MLP 14336) with the project's locally
trained tokenizer (640 tokens): 6.98B parameters (8.03B with Llama's 128k-token embeddings and
head), dummy weights, so the GPU machine needs no download."""

GPU_WORKLOADS: dict[str, Callable[[], list[ProgramSpec]]] = {
    "gpu_burst": lambda: burst(
        num_long=16,
        num_short=64,
        long_calls=4,
        long_prompt=1024,
        long_output=256,
        short_output=16,
    ),
    "gpu_poisson": lambda: poisson_mix(rate=16.0, num_programs=128, long_every=4),
}
"""The CPU workloads' program shapes, scaled so that an 8B model's batch on one GPU fills."""

ALL_WORKLOADS = {**WORKLOADS, **GPU_WORKLOADS}
POLICY = {
    "burst": Policy.PLAS,
    "poisson": Policy.PLAS,
    "poisson_high": Policy.PLAS,
    "mapreduce_chat": Policy.ATLAS,
    "mapreduce_chat_high": Policy.ATLAS,
    "gpu_burst": Policy.PLAS,
    "gpu_poisson": Policy.PLAS,
}


@dataclass(frozen=True, slots=True)
class Device:
    """Engine settings and defaults for one kind of machine."""

    engine_args: dict[str, Any]
    workloads: str
    variants: str
    runs: int
    max_num_seqs: int
    kv_cache_mib: int


DEVICES = {
    "cpu": Device(
        engine_args={"max_model_len": 2048, "block_size": 32},
        workloads="burst,poisson,mapreduce_chat",
        variants="fcfs,client_priority,autellix",
        runs=3,
        max_num_seqs=4,
        kv_cache_mib=64,
    ),
    "cuda": Device(
        engine_args={
            "max_model_len": 4096,
            "block_size": 16,
            "load_format": "dummy",
            "enforce_eager": False,
        },
        workloads="gpu_burst,gpu_poisson",
        variants="fcfs,client_priority,autellix,autellix_async",
        runs=2,
        max_num_seqs=32,
        kv_cache_mib=12 * 1024,
    ),
}


def summarise(result: ReplayResult) -> dict[str, Any]:
    per_token = sorted(p.latency_per_token for p in result.programs)
    by_kind: dict[str, list[float]] = {}
    for p in result.programs:
        by_kind.setdefault(p.workload, []).append(p.latency)
    return {
        "mean_s_per_token": statistics.mean(per_token),
        "p95_s_per_token": percentile(per_token, 95),
        "mean_latency_by_kind": {k: statistics.mean(v) for k, v in by_kind.items()},
        "makespan": result.duration,
        "num_preemptions": sum(int(c.report.get("num_preemptions", 0)) for c in result.calls),
        "tokens_ok": all(c.usage is not None for c in result.calls),
    }


@dataclass(frozen=True, slots=True)
class Setup:
    """One engine of the run: a variant, with the core policy its plugin runs (if any)."""

    variant: Variant
    policy: Policy

    @property
    def name(self) -> str:
        return (
            f"{self.variant.name}-{self.policy.value}" if self.variant.plugin else self.variant.name
        )

    def engine_args(self, base: dict[str, Any]) -> dict[str, Any]:
        """``LocalVLLMEngine`` arguments: ``base`` plus this variant's async choice."""
        extra = dict(base.get("engine_args") or {})
        if self.variant.async_scheduling is not None:
            extra["async_scheduling"] = self.variant.async_scheduling
        return {**base, "engine_args": extra}


def setups(workloads: list[str], variants: list[str]) -> list[Setup]:
    out: list[Setup] = []
    for variant in VARIANTS:
        if variant.name not in variants:
            continue
        if variant.plugin:
            out.extend(Setup(variant, p) for p in sorted({POLICY[w] for w in workloads}))
        else:
            out.append(Setup(variant, Policy.FCFS))
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class GatewayEngine(EngineAdapter):
    """An ``autellix serve`` process fronting one local vLLM engine, called as a client
    calls it: ``/v1/completions`` over HTTP with the program headers. The gateway keeps the
    process table; the replay's own table (and snapshot) is not sent."""

    def __init__(self, name: str, plugin: bool, policy: Policy, args: dict[str, Any]) -> None:
        self.engine_id = name
        self.model = str(args.get("served_model") or "tiny")
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        options = {**args, "plugin": plugin}
        options.pop("scheduler", None)
        self.config = {
            "host": "127.0.0.1",
            "port": self.port,
            "log_level": "warning",
            "policy": policy.value,
            "engines": [{"kind": "local_vllm", "id": name, "options": options}],
        }
        self.run_prefix = ""
        """Prefixes program and call ids, so that each run's programs start afresh in the
        gateway's process table (it keeps ended programs' service)."""
        self._proc: subprocess.Popen[bytes] | None = None
        self._session: Any = None
        self._config_path = ""
        self._log: Any = None

    async def start(self) -> None:
        import aiohttp

        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            json.dump(self.config, f)
        self._config_path = f.name
        autellix = str(Path(sys.executable).parent / "autellix")
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (closed by aclose)
        self._proc = subprocess.Popen(
            [autellix, "serve", "--config", f.name], stdout=self._log, stderr=self._log
        )
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        deadline = time.monotonic() + 1800
        probe = {"model": self.model, "prompt": [10, 11, 12], "max_tokens": 1}
        while True:  # up once a completion goes through (the engine is built after start)
            with contextlib.suppress(aiohttp.ClientError, OSError):
                async with self._session.post(f"{self.url}/v1/completions", json=probe) as r:
                    if r.status == 200:
                        return
            if time.monotonic() > deadline or self._proc.poll() is not None:
                self._log.seek(0)
                tail = self._log.read().decode(errors="replace")[-3000:]
                raise RuntimeError(f"gateway {self.engine_id} did not start:\n{tail}")
            await asyncio.sleep(0.5)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            await asyncio.to_thread(self._proc.wait, 60)
        if self._config_path:
            os.unlink(self._config_path)
        if self._log is not None:
            self._log.close()

    async def health(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def load(self) -> EngineLoad:
        return EngineLoad()

    async def abort(self, request_id: str) -> None:
        return None

    async def generate(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        tag, run = request.tag, self.run_prefix
        headers = {
            HEADER_CALL_ID: run + request.request_id,
            HEADER_PROGRAM_ID: run + tag.program_id,
            HEADER_THREAD_ID: tag.thread_id,
        }
        if tag.parent_ids:
            headers[HEADER_PARENT_IDS] = ",".join(run + p for p in tag.parent_ids)
        url = f"{self.url}/v1/completions"
        body = {**request.body, "model": self.model}
        async with self._session.post(url, json=body, headers=headers) as r:
            body = await r.json()
            if r.status != 200:
                raise EngineError(f"gateway answered {r.status}: {body}")
        usage = body.get("usage") or {}
        yield EngineChunk(
            text=str(body["choices"][0].get("text") or ""),
            finish_reason=body["choices"][0].get("finish_reason"),
            usage=EngineUsage(
                prompt_tokens=int(usage.get("prompt_tokens", 0)),
                completion_tokens=int(usage.get("completion_tokens", 0)),
            ),
        )


async def start_engines(
    chosen: list[Setup], engine_args: dict[str, Any], *, share_gpu: bool = False
) -> dict[str, EngineAdapter]:
    """Build and start one engine per setup. With ``share_gpu`` the engines split one GPU:
    each may claim 90% / n of it (vLLM refuses to start when less than its
    ``gpu_memory_utilization`` is free), and they start one at a time so that each one's
    memory profile sees the others' final allocations."""
    if share_gpu:
        extra = {**engine_args["engine_args"], "gpu_memory_utilization": 0.9 / len(chosen)}
        engine_args = {**engine_args, "engine_args": extra}
    engines: dict[str, EngineAdapter] = {
        s.name: GatewayEngine(s.name, s.variant.plugin, s.policy, s.engine_args(engine_args))
        if s.variant.gateway
        else LocalVLLMEngine(
            engine_id=s.name,
            plugin=s.variant.plugin,
            scheduling_policy=s.variant.scheduling_policy,
            scheduler=SchedulerConfig(policy=s.policy),
            **s.engine_args(engine_args),
        )
        for s in chosen
    }
    started = time.monotonic()
    try:
        if share_gpu:
            for engine in engines.values():
                await engine.start()
        else:
            await asyncio.gather(*(e.start() for e in engines.values()))
    except BaseException:  # leave no engine (nor gateway process) behind
        await asyncio.gather(*(e.aclose() for e in engines.values()), return_exceptions=True)
        raise
    print(f"{len(engines)} engines up in {time.monotonic() - started:.0f} s", flush=True)
    return engines


async def run_all(
    workloads: list[str],
    variants: list[str],
    runs: int,
    engine_args: dict[str, Any],
    out: str,
    *,
    share_gpu: bool = False,
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Runs interleave the variants (run i of every variant, then run i+1) so that a change
    in the machine's background load hits them alike."""
    chosen = setups(workloads, variants)
    engines = await start_engines(chosen, engine_args, share_gpu=share_gpu)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    try:
        for run in range(runs):
            for workload in workloads:
                for setup in chosen:
                    if setup.variant.plugin and POLICY[workload] is not setup.policy:
                        continue
                    engine = engines[setup.name]
                    if isinstance(engine, GatewayEngine):
                        engine.run_prefix = f"run{run}-"
                    result = await replay(
                        engine,
                        ALL_WORKLOADS[workload](),
                        policy=POLICY[workload],
                        hint=setup.variant.hint,
                    )
                    summary = summarise(result)
                    results.setdefault(setup.variant.name, {}).setdefault(workload, []).append(
                        summary
                    )
                    print(
                        f"[{setup.name}] {workload} run {run}: "
                        f"{summary['mean_s_per_token']:.4f} s/token, "
                        f"p95 {summary['p95_s_per_token']:.4f}, "
                        f"preemptions {summary['num_preemptions']}",
                        flush=True,
                    )
                    if out:
                        Path(out).write_text(json.dumps(results, indent=2))
    finally:
        await asyncio.gather(*(e.aclose() for e in engines.values()))
    return results


def table(results: dict[str, dict[str, list[dict[str, Any]]]], workloads: list[str]) -> str:
    """Median s/token per variant, each Autellix variant against stock FCFS, and the async
    variant against the sync one (> 1 means the first named is slower)."""
    names = [v.name for v in VARIANTS if v.name in results]
    ratios = [("fcfs", a) for a in TAXED if a in names and "fcfs" in names]
    if {"autellix", "autellix_async"} <= set(names):
        ratios.append(("autellix", "autellix_async"))
    head = [*names, *(f"{a} / {b}" for a, b in ratios)]
    lines = ["| workload | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for workload in workloads:
        med = {
            v: statistics.median(r["mean_s_per_token"] for r in results[v][workload])
            for v in names
            if workload in results[v]
        }
        cells = [f"{med[v]:.4f}" if v in med else "-" for v in names]
        cells += [f"{med[a] / med[b]:.2f}x" if {a, b} <= set(med) else "-" for a, b in ratios]
        lines.append(f"| {workload} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def gpu_model() -> str:
    """The dummy-weight 8B-shaped model's directory (config and tokenizer only)."""
    return str(ensure_tiny_model(default_cache_dir() / "models" / "llama8b-shape", spec=GPU_MODEL))


def engine_settings(device: Device, args: argparse.Namespace) -> dict[str, Any]:
    """``LocalVLLMEngine`` arguments shared by every variant on ``device``."""
    extra = dict(device.engine_args)
    settings: dict[str, Any] = {
        "max_num_seqs": args.max_num_seqs or device.max_num_seqs,
        "kv_cache_memory_bytes": (args.kv_cache_mib or device.kv_cache_mib) * 2**20,
        "max_model_len": extra.pop("max_model_len"),
        "block_size": extra.pop("block_size"),
        "engine_args": extra,
    }
    if args.device == "cuda":
        settings["model"] = gpu_model()
        settings["served_model"] = "llama8b-shape"
    return settings


async def main(args: argparse.Namespace) -> None:
    device = DEVICES[args.device]
    workloads = (args.workloads or device.workloads).split(",")
    unknown = set(workloads) - set(ALL_WORKLOADS)
    if unknown:
        sys.exit(f"unknown workloads: {sorted(unknown)}")
    variants = (args.variants or device.variants).split(",")
    gpu_only = [v.name for v in VARIANTS if v.gpu_only and v.name in variants]
    if args.device == "cpu" and gpu_only:
        sys.exit(f"{gpu_only}: vLLM's CPU platform turns async scheduling off; use --device cuda")
    settings = engine_settings(device, args)
    runs = args.runs or device.runs
    share_gpu = args.device == "cuda"
    results = await run_all(workloads, variants, runs, settings, args.out, share_gpu=share_gpu)
    print(table(results, workloads))
    print(light_load_line(results, workloads))


def light_load_line(
    results: dict[str, dict[str, list[dict[str, Any]]]], workloads: list[str]
) -> str:
    """One line for ``make bench``: stock FCFS / each taxed variant, per workload (medians)."""
    cells = []
    for workload in workloads:
        if workload not in results.get("fcfs", {}):
            continue
        base = statistics.median(r["mean_s_per_token"] for r in results["fcfs"][workload])
        for name in TAXED:
            runs = results.get(name, {}).get(workload)
            if runs:
                median = statistics.median(r["mean_s_per_token"] for r in runs)
                cells.append(f"{workload} fcfs/{name} {base / median:.2f}x")
    return "light-load ratio (1.00x = no tax, below 1 = slower): " + ", ".join(cells)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=sorted(DEVICES), default="cpu")
    parser.add_argument("--runs", type=int, default=0, help="default: 3 on cpu, 2 on cuda")
    parser.add_argument("--max-num-seqs", type=int, default=0, help="default: 4 cpu, 32 cuda")
    parser.add_argument("--kv-cache-mib", type=int, default=0, help="per engine; 64 / 12288")
    parser.add_argument("--workloads", default="", help="comma-separated; default per device")
    parser.add_argument("--variants", default="", help="comma-separated; default per device")
    parser.add_argument("--out", default="")
    asyncio.run(main(parser.parse_args()))
