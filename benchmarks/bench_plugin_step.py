"""CPU time of one engine step: the Autellix plugin against stock vLLM's ``Scheduler``.

    python benchmarks/bench_plugin_step.py [--steps 200] [--rounds 5] [--sizes 1,4,64]

No model: the pattern of ``tests/engine_logic`` (a ``VllmConfig`` for the tiny model, real
``Request``s, synthetic ``ModelRunnerOutput``s with one sampled token per request). Each
measured step is one ``schedule()`` plus one ``update_from_output()``, as vLLM's engine core
runs them on CPU (synchronous scheduling), timed in the process's CPU time (which other
processes on a shared machine do not inflate).

Scenarios, each at every size N:

- ``running``: N requests decode, nothing waits (light load: nothing to reorder);
- ``waiting``: 4 batch slots, 4 requests decode and N more wait (the core ranks them).

Schedulers, measured in interleaved rounds (stock, stock+stats, plugin, stock, ...):

- ``stock``: vLLM's ``Scheduler``, FCFS, ``log_stats=False``;
- ``stock+stats``: the same with ``log_stats=True`` (what a stat logger, such as the one
  ``LocalVLLMEngine`` installs for the UI's KV usage, turns on);
- ``autellix``: ``AutellixScheduler`` (PLAS), ``log_stats=False``, with a quantum no step
  reaches, so that no call is preempted and both run the same steps (what is measured is the
  plugin's bookkeeping, not a different schedule).

``PYTHONPATH=<checkout>/integrations`` measures another checkout's plugin (before/after).

Prints the median per-step CPU microseconds of each and the plugin's added microseconds.
"""

from __future__ import annotations

import argparse
import copy
import functools
import gc
import statistics
import time
from typing import Any

import torch
from vllm.config import CacheConfig, ModelConfig, SchedulerConfig, VllmConfig
from vllm.sampling_params import SamplingParams
from vllm.utils.hashing import sha256
from vllm.v1.core.kv_cache_utils import get_request_block_hasher, init_none_hash
from vllm.v1.core.sched.scheduler import Scheduler
from vllm.v1.kv_cache_interface import FullAttentionSpec, KVCacheConfig, KVCacheGroupSpec
from vllm.v1.outputs import ModelRunnerOutput
from vllm.v1.request import Request
from vllm.v1.structured_output import StructuredOutputManager

from autellix_backend.models import ensure_tiny_model
from autellix_integrations.vllm import KEY_CALL_ID, KEY_PROGRAM_ID, AutellixScheduler

BLOCK_SIZE = 16
NUM_BLOCKS = 8192
PROMPT = 24
STEP_S = 0.01
"""Engine seconds each step adds on the plugin's fake clock (a CPU decode step's order)."""

init_none_hash(sha256)
_HASHER = get_request_block_hasher(BLOCK_SIZE, sha256)


@functools.cache
def _config(max_num_seqs: int) -> VllmConfig:
    return VllmConfig(
        scheduler_config=SchedulerConfig(
            max_num_seqs=max_num_seqs,
            max_num_batched_tokens=4096,
            max_model_len=2048,
            enable_chunked_prefill=True,
            is_encoder_decoder=False,
        ),
        model_config=ModelConfig(
            model=str(ensure_tiny_model()), dtype="float32", seed=0, skip_tokenizer_init=True
        ),
        cache_config=CacheConfig(block_size=BLOCK_SIZE),
    )


def make(kind: str, max_num_seqs: int) -> Scheduler:
    config = copy.deepcopy(_config(max_num_seqs))
    config.cache_config.num_gpu_blocks = NUM_BLOCKS
    if kind == "autellix":
        # A quantum no step reaches: the waiting calls never displace the running ones, so
        # both schedulers run the same steps and the difference is bookkeeping alone.
        config.additional_config = {"autellix": {"policy": "plas", "base_quantum": 1e6}}
    kv = KVCacheConfig(
        num_blocks=NUM_BLOCKS,
        kv_cache_tensors=[],
        kv_cache_groups=[
            KVCacheGroupSpec(
                ["layer"],
                FullAttentionSpec(
                    block_size=BLOCK_SIZE, num_kv_heads=1, head_size=1, dtype=torch.float32
                ),
            )
        ],
    )
    cls = AutellixScheduler if kind == "autellix" else Scheduler
    scheduler = cls(
        vllm_config=config,
        kv_cache_config=kv,
        log_stats=kind == "stock+stats",
        structured_output_manager=StructuredOutputManager(config),
        block_size=BLOCK_SIZE,
    )
    if isinstance(scheduler, AutellixScheduler):
        now = [1000.0]
        scheduler.autellix_clock = lambda: now[0]
        scheduler._bench_now = now  # type: ignore[attr-defined]
    return scheduler


def request(request_id: str, max_tokens: int) -> Request:
    xargs: dict[str, Any] = {KEY_PROGRAM_ID: f"prog-{request_id}", KEY_CALL_ID: request_id}
    params = SamplingParams(max_tokens=max_tokens, ignore_eos=True, extra_args=xargs)
    first = sum(ord(c) for c in request_id)
    return Request(
        request_id=request_id,
        prompt_token_ids=[(first + i) % 500 + 10 for i in range(PROMPT)],
        sampling_params=params,
        pooling_params=None,
        block_hasher=_HASHER,
    )


def _runner_output(scheduler: Scheduler, output: Any) -> ModelRunnerOutput:
    req_ids = list(output.num_scheduled_tokens)
    requests = scheduler.requests
    return ModelRunnerOutput(
        req_ids=req_ids,
        req_id_to_index={r: i for i, r in enumerate(req_ids)},
        sampled_token_ids=[[] if requests[r].is_prefill_chunk else [7] for r in req_ids],
        logprobs=None,
        prompt_logprobs_dict={},
        pooler_output=[],
    )


def step(scheduler: Scheduler) -> None:
    output = scheduler.schedule()
    runner = _runner_output(scheduler, output)
    now = getattr(scheduler, "_bench_now", None)
    if now is not None:
        now[0] += STEP_S
    scheduler.update_from_output(output, runner)


def measure(kind: str, scenario: str, size: int, steps: int) -> float:
    """Mean CPU microseconds per step over ``steps`` steady steps (the synthetic model's
    output, built here, is timed alone and taken off)."""
    slots = size if scenario == "running" else 4
    scheduler = make(kind, slots)
    num = size if scenario == "running" else 4 + size
    for i in range(num):
        scheduler.add_request(request(f"r{i}", max_tokens=steps + 64))
    for _ in range(4):  # prefill and settle
        step(scheduler)
    gc.collect()
    started = time.process_time_ns()
    for _ in range(steps):
        step(scheduler)
    total = time.process_time_ns() - started
    outputs = scheduler.schedule()
    started = time.process_time_ns()
    for _ in range(steps):
        _runner_output(scheduler, outputs)
    model = time.process_time_ns() - started
    return (total - model) / steps / 1000


def main(args: argparse.Namespace) -> None:
    kinds = ("stock", "stock+stats", "autellix")
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"per-step CPU us (median of {args.rounds} rounds of {args.steps} steps)")
    print("| scenario | N | stock | stock+stats | autellix | autellix - stock | ratio |")
    print("|---|---|---|---|---|---|---|")
    for scenario in ("running", "waiting"):
        for size in sizes:
            samples: dict[str, list[float]] = {k: [] for k in kinds}
            for _ in range(args.rounds):
                for kind in kinds:
                    samples[kind].append(measure(kind, scenario, size, args.steps))
            med = {k: statistics.median(v) for k, v in samples.items()}
            stock, ours = med["stock"], med["autellix"]
            print(
                f"| {scenario} | {size} | {stock:.0f} | {med['stock+stats']:.0f} | {ours:.0f} "
                f"| {ours - stock:+.0f} | {ours / stock:.2f}x |",
                flush=True,
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sizes", default="1,4,64")
    main(parser.parse_args())
