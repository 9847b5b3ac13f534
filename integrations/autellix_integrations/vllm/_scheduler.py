"""``AutellixScheduler``: vLLM's V1 scheduler with every ordering decision made by the core.

vLLM's engine loop calls ``schedule()`` then ``update_from_output()`` each step. Around the
stock implementation this subclass:

1. queues each new request in the core ``autellix_backend.core.Scheduler`` (program ids and
   the front end's program snapshot from ``SamplingParams.extra_args``; no program rows),
2. before each step asks the core what runs, preempts the running requests the core gives
   up (vLLM frees their KV and recomputes them later) and lets vLLM admit only the waiting
   requests the core chose, in the core's order,
3. after each step credits the step's engine time to the requests that ran,
4. when a request ends (finished, aborted or preempted and dropped), reports the service it
   consumed back to the front end in ``kv_transfer_params["autellix"]`` and the side channel.

vLLM calls this interface non-public; ``SUPPORTED_VLLM`` pins the versions it is tested on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from vllm.v1.core.sched.request_queue import SchedulingPolicy, create_request_queue
from vllm.v1.core.sched.scheduler import Scheduler
from vllm.v1.request import Request, RequestStatus

from autellix_backend.core import (
    AutellixError,
    CallArrival,
    CallProgress,
    CallRecord,
    SchedulerDecision,
)
from autellix_backend.core import Scheduler as CoreScheduler
from autellix_integrations.vllm._budget import KVBlockBudget
from autellix_integrations.vllm._metadata import REPORT_KEY, MetadataError, arrival_from_xargs
from autellix_integrations.vllm._report_server import serve_reports
from autellix_integrations.vllm._reports import ServiceReport, ServiceReportLog
from autellix_integrations.vllm._settings import PluginSettings
from autellix_integrations.vllm._steps import StepLog, StepRecord
from autellix_integrations.vllm._versions import check_vllm_version

if TYPE_CHECKING:
    from vllm.v1.core.sched.output import SchedulerOutput
    from vllm.v1.engine import EngineCoreOutputs
    from vllm.v1.outputs import ModelRunnerOutput

logger = logging.getLogger(__name__)
check_vllm_version(logger)

_WAITING = (RequestStatus.WAITING, RequestStatus.PREEMPTED)


class AutellixScheduler(Scheduler):
    """vLLM scheduler whose order and preemptions come from the Autellix core."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.autellix_settings = PluginSettings.load(_additional_config(self.vllm_config))
        self.autellix = CoreScheduler(
            self.autellix_settings.scheduler, engine_id=self.autellix_settings.engine_id
        )
        self.autellix_reports = ServiceReportLog()
        settings = self.autellix_settings
        if settings.report_port:
            serve_reports(self.autellix_reports, settings.report_host, settings.report_port)
        self._step_log = StepLog(settings.step_log) if settings.step_log else None
        self._schedule_s = 0.0
        self._update_s = 0.0
        self._loop_s = 0.0
        self._busy_since: float | None = None
        if self.policy is not SchedulingPolicy.FCFS:
            logger.warning("Autellix orders requests itself; --scheduling-policy is ignored")
        # Order comes from the core; vLLM's queues only hold it, and running[-1] (vLLM's own
        # preemption victim when KV runs out) is kept as the core's lowest-priority call.
        self.policy = SchedulingPolicy.FCFS
        self.waiting = create_request_queue(self.policy)
        self.kv_holding_waiting = create_request_queue(self.policy)
        self._call_of: dict[str, str] = {}
        self._request_of: dict[str, Request] = {}
        self._step_started = time.monotonic()
        logger.info(
            "Autellix scheduler: policy=%s queues=%d base_quantum=%s",
            self.autellix.config.policy.value,
            self.autellix.config.num_queues,
            self.autellix.config.base_quantum,
        )

    # Arrivals and completions --------------------------------------------------

    def add_request(self, request: Request) -> None:
        known = request.request_id in self.requests
        super().add_request(request)
        if known:
            return
        now = time.monotonic()
        arrival = self._arrival(request)
        self.autellix.add_call(arrival, now)
        self._call_of[request.request_id] = arrival.call_id
        self._request_of[arrival.call_id] = request

    def _free_request(
        self, request: Request, delay_free_blocks: bool = False
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        kv_params, ec_params = super()._free_request(request, delay_free_blocks)
        report = self._close_call(request)
        if report is not None:
            kv_params = {**(kv_params or {}), REPORT_KEY: report.as_dict()}
        return kv_params, ec_params

    # The step ------------------------------------------------------------------

    def schedule(self, throttle_prefills: bool = False) -> SchedulerOutput:
        now = time.monotonic()
        self._loop_s = now - self._busy_since if self._busy_since is not None else 0.0
        decision = self.autellix.schedule(self._budget(), now)
        self._preempt(decision, now)
        held = self._admit_only(decision)
        try:
            output = super().schedule(throttle_prefills)
        finally:
            self._requeue(held)
        self._step_started = time.monotonic()
        self._schedule_s = self._step_started - now
        return output

    def update_from_output(
        self, scheduler_output: SchedulerOutput, model_runner_output: ModelRunnerOutput
    ) -> dict[int, EngineCoreOutputs]:
        now = time.monotonic()
        step_time = max(0.0, now - self._step_started)
        progress = self._progress(scheduler_output, model_runner_output)
        if progress:
            self.autellix.update_from_step(progress, step_time, now)
        if self._step_log is not None and scheduler_output.total_num_scheduled_tokens > 0:
            self._step_log.write(self._step_record(scheduler_output, progress, step_time))
        outputs = super().update_from_output(scheduler_output, model_runner_output)
        done = time.monotonic()
        self._update_s = done - now
        self._busy_since = done if self.has_unfinished_requests() else None
        return outputs

    # Phases --------------------------------------------------------------------

    def _arrival(self, request: Request) -> CallArrival:
        params = request.sampling_params
        extra = params.extra_args if params is not None else None
        try:
            arrival = arrival_from_xargs(
                request.request_id,
                extra,
                prompt_tokens=request.num_prompt_tokens,
                max_tokens=request.max_tokens,
            )
            arrival.validate()
        except (MetadataError, AutellixError) as exc:
            logger.warning("request %s: bad Autellix metadata (%s)", request.request_id, exc)
            arrival = arrival_from_xargs(
                request.request_id,
                None,
                prompt_tokens=request.num_prompt_tokens,
                max_tokens=request.max_tokens,
            )
        if self.autellix.has_call(arrival.call_id):
            logger.warning("request %s: duplicate call id %s", request.request_id, arrival.call_id)
            arrival = replace(arrival, call_id=request.request_id)
        return arrival

    def _budget(self) -> KVBlockBudget:
        return KVBlockBudget(
            max_num_seqs=self.max_num_running_reqs,
            num_blocks=self.kv_cache_manager.block_pool.num_gpu_blocks - 1,
            block_size=self.block_size,
            requests=self._request_of,
            lookahead_tokens=self.num_lookahead_tokens,
        )

    def _preempt(self, decision: SchedulerDecision, now: float) -> None:
        """Free the KV of running requests the core gave up; they resume by recompute."""
        for call in decision.preempted:
            request = self._request_of.get(call.call_id)
            if request is None or request.status is not RequestStatus.RUNNING:
                continue
            if not self._request_blocks_can_be_freed(request):
                continue
            self.running.remove(request)
            self._preempt_request(request, now, drop_stale_output=self.requires_kv_delivery)
        rank = {c.call_id: i for i, c in enumerate(decision.scheduled)}
        last = len(rank)
        self.running.sort(key=lambda r: rank.get(self._call_of.get(r.request_id, ""), last))

    def _admit_only(self, decision: SchedulerDecision) -> list[Request]:
        """Leave in ``self.waiting`` only the core's choices, best first; return the rest."""
        chosen = [
            request
            for call in decision.scheduled
            if (request := self._request_of.get(call.call_id)) is not None
            and request.status in _WAITING
            and request.num_computed_tokens == 0
        ]
        picked = set(chosen)
        held = [r for r in self.waiting if r not in picked]
        self.waiting = create_request_queue(self.policy)
        for request in chosen:
            self.waiting.add_request(request)
        return held

    def _requeue(self, held: list[Request]) -> None:
        """Put every still-waiting request back in one queue, in the core's order."""
        pending = [*self.waiting, *held]
        rank = {c.call_id: i for i, c in enumerate(self.autellix.waiting())}
        last = len(rank)
        pending.sort(key=lambda r: rank.get(self._call_of.get(r.request_id, ""), last))
        self.waiting = create_request_queue(self.policy)
        for request in pending:
            self.waiting.add_request(request)

    def _progress(
        self, scheduler_output: SchedulerOutput, model_runner_output: ModelRunnerOutput
    ) -> list[CallProgress]:
        sampled = model_runner_output.sampled_token_ids
        index = model_runner_output.req_id_to_index
        progress: list[CallProgress] = []
        for req_id, num_tokens in scheduler_output.num_scheduled_tokens.items():
            call_id = self._call_of.get(req_id)
            request = self.requests.get(req_id)
            if call_id is None or request is None or not self.autellix.has_call(call_id):
                continue
            row = index.get(req_id)
            num_sampled = len(sampled[row]) if sampled and row is not None else 0
            start = request.num_computed_tokens - num_tokens
            feeds_output = request.num_tokens > request.num_prompt_tokens
            ends_at_tail = start + num_tokens >= request.num_tokens
            num_prefill = num_tokens - (1 if feeds_output and ends_at_tail else 0)
            progress.append(
                CallProgress(
                    call_id=call_id,
                    num_prefill_tokens=max(0, num_prefill),
                    num_decode_tokens=num_sampled,
                )
            )
        return progress

    def _step_record(
        self, scheduler_output: SchedulerOutput, progress: list[CallProgress], step_time: float
    ) -> StepRecord:
        sampled = {p.call_id: p.num_decode_tokens for p in progress}
        chunks: list[tuple[int, int]] = []
        num_decode = num_context = 0
        for req_id, num_tokens in scheduler_output.num_scheduled_tokens.items():
            request = self.requests.get(req_id)
            if request is None:
                continue
            start = request.num_computed_tokens - num_tokens
            if num_tokens == 1 and start >= request.num_prompt_tokens:
                num_decode += 1
                num_context += start + 1
            else:
                chunks.append((num_tokens, start))
        return StepRecord(
            schedule_s=self._schedule_s,
            model_s=step_time,
            prefill_chunks=chunks,
            num_decode_seqs=num_decode,
            num_decode_context_tokens=num_context,
            num_sampled=sum(1 for n in sampled.values() if n > 0),
            update_s=self._update_s,
            loop_s=self._loop_s,
        )

    def _close_call(self, request: Request) -> ServiceReport | None:
        call_id = self._call_of.pop(request.request_id, None)
        if call_id is None:
            return None
        self._request_of.pop(call_id, None)
        if not self.autellix.has_call(call_id):
            return None
        now = time.monotonic()
        if request.status is RequestStatus.FINISHED_ABORTED:
            call = self.autellix.abort_call(call_id, now)
        else:
            call = self.autellix.finish_call(call_id, now)
        report = self._report(call, request)
        self.autellix_reports.add(report)
        return report

    def _report(self, call: CallRecord, request: Request) -> ServiceReport:
        return ServiceReport(
            call_id=call.call_id,
            request_id=request.request_id,
            program_id=call.program_id,
            service=call.service,
            wait=call.wait,
            num_preemptions=call.num_preemptions,
            num_output_tokens=request.num_output_tokens,
            aborted=call.status.name == "ABORTED",
        )


def _additional_config(vllm_config: Any) -> dict[str, Any]:
    extra = getattr(vllm_config, "additional_config", None)
    return extra if isinstance(extra, dict) else {}
