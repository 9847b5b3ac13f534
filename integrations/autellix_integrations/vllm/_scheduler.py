"""``AutellixScheduler``: vLLM's V1 scheduler with every ordering decision made by the core.

vLLM's engine loop calls ``schedule()`` then ``update_from_output()`` each step (with async
scheduling, the next ``schedule()`` comes before the previous step's update). Around the
stock implementation ``AutellixSchedulerMixin``:

1. queues each new request in the core ``autellix_backend.core.Scheduler`` (program ids and
   the front end's program snapshot from ``SamplingParams.extra_args``; no program rows),
2. before each step asks the core what runs, preempts the running requests the core gives
   up (vLLM frees their KV and recomputes them later) and lets vLLM admit only the waiting
   requests the core chose, in the core's order; a step with nothing to reorder (nothing
   waits, the KV cache has room) skips this and costs what stock vLLM's step costs,
3. after each step credits the step's engine time to the requests that ran,
4. when a request ends (finished, aborted or preempted and dropped), reports the service it
   consumed back to the front end in ``kv_transfer_params["autellix"]`` and the side channel,
5. with ``kv_retention`` on, keeps a finished call's cached KV blocks for its program's next
   call (``_retention.SchedulerRetention``) and gives them back before they could stall a call;
   a thread (``_retention.IdleExpiry``) ends holds on TTL while the engine is idle, under a
   lock the scheduler's entry points take (only with retention on).

The mixin is applied to both of vLLM's schedulers: ``AutellixScheduler`` (on ``Scheduler``)
and ``AutellixAsyncScheduler`` (on ``AsyncScheduler``). Naming ``AutellixScheduler`` in
``--scheduler-cls`` builds whichever of the two matches vLLM's own choice from the config
(``scheduler_config.async_scheduling``), as stock vLLM does for its own classes.

vLLM calls this interface non-public; ``SUPPORTED_VLLM`` pins the versions it is tested on.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from vllm.v1.core.sched.async_scheduler import AsyncScheduler
from vllm.v1.core.sched.request_queue import (
    RequestQueue,
    SchedulingPolicy,
    create_request_queue,
)
from vllm.v1.core.sched.scheduler import Scheduler
from vllm.v1.request import Request, RequestStatus

from autellix_backend.core import (
    AutellixError,
    CallArrival,
    CallProgress,
    CallRecord,
    KVRetention,
    SchedulerDecision,
)
from autellix_backend.core import Scheduler as CoreScheduler
from autellix_integrations.vllm._budget import KVBlockBudget
from autellix_integrations.vllm._inflight import InFlightSteps, LandedStep
from autellix_integrations.vllm._metadata import REPORT_KEY, MetadataError, arrival_from_xargs
from autellix_integrations.vllm._report_server import serve_reports
from autellix_integrations.vllm._reports import ServiceReport, ServiceReportLog
from autellix_integrations.vllm._retention import IdleExpiry, LockedHolds, SchedulerRetention
from autellix_integrations.vllm._settings import PluginSettings
from autellix_integrations.vllm._siblings import SiblingReports
from autellix_integrations.vllm._steps import StepLog, StepRecord
from autellix_integrations.vllm._versions import check_vllm_version
from autellix_protocol import (
    END_PROGRAM_PREFIX,
    KEY_PROGRAM_ID,
    NextCallHint,
    ProtocolError,
    decode_next_call,
)
from autellix_protocol.report import SIBLINGS_KEY, offsets_since

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from vllm.v1.core.sched.output import SchedulerOutput
    from vllm.v1.engine import EngineCoreOutputs
    from vllm.v1.outputs import ModelRunnerOutput

# Under vLLM's logger, so these lines reach the engine's log with vLLM's own handler and format.
logger = logging.getLogger(f"vllm.{__name__}")
check_vllm_version(logger)

_RETAINED = (RequestStatus.FINISHED_STOPPED, RequestStatus.FINISHED_LENGTH_CAPPED)
"""How a call ends for its program to go on (a tool call follows); others end the hold."""

_WAITING = (
    RequestStatus.WAITING,
    RequestStatus.PREEMPTED,
    RequestStatus.WAITING_FOR_STRUCTURED_OUTPUT_GRAMMAR,
)
"""Statuses of a waiting request the core may hand to vLLM's ``schedule``. A structured-output
request waits for its grammar: vLLM's own pass over the queue promotes it once the grammar is
compiled (and skips it until then), so it must reach that pass or it waits forever."""

_POOL_ENTRY_POINTS = (
    "add_request",
    "schedule",
    "update_from_output",
    "finish_requests",
    "reset_prefix_cache",
)
"""The scheduler methods vLLM's engine loop calls that may change the block pool."""

if TYPE_CHECKING:
    _SchedulerBase = Scheduler
else:
    _SchedulerBase = object


class AutellixSchedulerMixin(_SchedulerBase):
    """The Autellix logic, for either vLLM scheduler: order and preemptions from the core."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.autellix_clock: Callable[[], float] = time.monotonic
        """The monotonic clock service and waits are measured with (tests drive their own)."""
        self.autellix_settings = PluginSettings.load(_additional_config(self.vllm_config))
        self.autellix = CoreScheduler(
            self.autellix_settings.scheduler, engine_id=self.autellix_settings.engine_id
        )
        self.autellix_reports = ServiceReportLog()
        self._siblings = SiblingReports()
        settings = self.autellix_settings
        self._step_log = StepLog(settings.step_log) if settings.step_log else None
        self._in_flight = InFlightSteps()
        self._update_s = 0.0
        self._busy_since: float | None = None
        self._positions_move_before_update = isinstance(self, AsyncScheduler) or (
            self.vllm_config.parallel_config.pipeline_parallel_size > 1
        )
        """Whether a step can be scheduled before the previous one is updated (async
        scheduling, or pipeline stages: vLLM's batch queue), so each step's request positions
        must be recorded when it is scheduled; otherwise they are read back at update."""
        if self.policy is not SchedulingPolicy.FCFS:
            logger.warning("Autellix orders requests itself; --scheduling-policy is ignored")
        # Order comes from the core; vLLM's queues only hold it, and running[-1] (vLLM's own
        # preemption victim when KV runs out) is kept as the core's lowest-priority call.
        self.policy = SchedulingPolicy.FCFS
        self.waiting = create_request_queue(self.policy)
        self.kv_holding_waiting = create_request_queue(self.policy)
        self._call_of: dict[str, str] = {}
        self._request_of: dict[str, Request] = {}
        self.autellix_retention = self._retention()
        self._idle_expiry: IdleExpiry | None = None
        holds: LockedHolds | None = None
        if self.autellix_retention is not None:
            self._idle_expiry = self._guard_pool(self.autellix_retention)
            holds = LockedHolds(self.autellix_retention, self._idle_expiry.lock)
        if settings.report_port:
            serve_reports(
                self.autellix_reports, settings.report_host, settings.report_port, holds=holds
            )
        logger.info(
            "Autellix scheduler (%s): policy=%s queues=%d base_quantum=%s",
            type(self).__name__,
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
        now = self.autellix_clock()
        arrival = self._arrival(request)
        self.autellix.add_call(arrival, now)
        self._call_of[request.request_id] = arrival.call_id
        self._request_of[arrival.call_id] = request
        params = request.sampling_params
        self._siblings.arrived(request.request_id, params.extra_args if params else None)
        if self.autellix_retention is not None:
            self.autellix_retention.arrived(arrival.program_id, now)

    def finish_requests(
        self, request_ids: str | Iterable[str] | None, finished_status: RequestStatus
    ) -> list[Request]:
        """vLLM's aborts; an id with ``END_PROGRAM_PREFIX`` is the front end's notice that
        a program ended, which ends the program's hold and finishes no request."""
        if request_ids is None:
            return super().finish_requests(request_ids, finished_status)
        ids = (request_ids,) if isinstance(request_ids, str) else tuple(request_ids)
        ended = [i for i in ids if i.startswith(END_PROGRAM_PREFIX)]
        if ended:
            retention = self.autellix_retention
            if retention is not None:
                for notice in ended:
                    retention.release(notice.removeprefix(END_PROGRAM_PREFIX))
            ids = tuple(i for i in ids if not i.startswith(END_PROGRAM_PREFIX))
        return super().finish_requests(ids, finished_status)

    def _free_request(
        self, request: Request, delay_free_blocks: bool = False
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        if self.autellix_retention is not None:
            self._retain(request, self.autellix_retention)
        kv_params, ec_params = super()._free_request(request, delay_free_blocks)
        report = self._close_call(request)
        values = report.as_dict() if report is not None else None
        earlier = self._siblings.ended(request.request_id, values)
        if values is not None:
            kv_params = {**(kv_params or {}), REPORT_KEY: {**values, SIBLINGS_KEY: earlier}}
        return kv_params, ec_params

    # The step ------------------------------------------------------------------

    def schedule(self, throttle_prefills: bool = False) -> SchedulerOutput:
        now = self.autellix_clock()
        loop_s = now - self._busy_since if self._busy_since is not None else 0.0
        retention = self.autellix_retention
        if self._nothing_to_reorder():
            output = super().schedule(throttle_prefills)
        else:
            num_held = self._yield_holds(retention, now) if retention is not None else 0
            decision = self.autellix.schedule(self._budget(num_held), now)
            self._preempt(decision, now)
            held = self._admit_only(decision)
            try:
                output = super().schedule(throttle_prefills)
            finally:
                self._requeue(held)
            if retention is not None and len(retention.holds.ledger):
                self._release_admitted(retention)
        launched = self.autellix_clock()
        self._in_flight.launch(
            output,
            self.requests if self._positions_move_before_update else None,
            launched=launched,
            schedule_s=launched - now,
            loop_s=loop_s,
        )
        return output

    def update_from_output(
        self, scheduler_output: SchedulerOutput, model_runner_output: ModelRunnerOutput
    ) -> dict[int, EngineCoreOutputs]:
        now = self.autellix_clock()
        step = self._in_flight.land(scheduler_output, now)
        progress = self._progress(scheduler_output, model_runner_output, step)
        if progress:
            self.autellix.update_from_step(progress, step.model_s, now)
            if self.autellix_retention is not None:
                num_prefill = sum(p.num_prefill_tokens for p in progress)
                if num_prefill >= len(progress) * self.block_size:  # mostly prefill
                    self.autellix_retention.observe_prefill(
                        num_prefill + sum(p.num_decode_tokens for p in progress), step.model_s
                    )
        if self._step_log is not None and scheduler_output.total_num_scheduled_tokens > 0:
            self._step_log.write(self._step_record(scheduler_output, progress, step))
        outputs = super().update_from_output(scheduler_output, model_runner_output)
        done = self.autellix_clock()
        self._update_s = done - now
        self._busy_since = done if self.has_unfinished_requests() else None
        return outputs

    # Phases --------------------------------------------------------------------

    def _nothing_to_reorder(self) -> bool:
        """Whether this step is stock vLLM's whatever the core would decide, so the decision
        can be skipped: no call waits (in the core or in vLLM's queue), no KV is held for a
        program, and the free KV blocks hold whatever the running requests can take in one
        step (the step's token budget, plus a partial block and the lookahead each), so
        neither the core nor vLLM would preempt. Running calls past their quantum only give
        way to waiting ones, so with none waiting they keep running either way."""
        if self.autellix.num_waiting or self.waiting:
            return False
        retention = self.autellix_retention
        if retention is not None and len(retention.holds.ledger):
            return False
        num_running = len(self.running)
        if not num_running:
            return True
        bs = self.block_size
        need = num_running * (1 + -(-self.num_lookahead_tokens // bs)) + -(
            -self.max_num_scheduled_tokens // bs
        )
        return self.kv_cache_manager.block_pool.get_num_free_blocks() > need

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

    def _retention(self) -> SchedulerRetention | None:
        """The KV retention policy, when the settings turn it on and the engine supports it."""
        config = self.autellix.config
        if config.kv_retention is KVRetention.OFF:
            return None
        if (
            not self.cache_config.enable_prefix_caching
            or len(self.kv_cache_config.kv_cache_groups) != 1
        ):
            logger.warning(
                "kv_retention=%s needs prefix caching and one KV cache group; it is off",
                config.kv_retention.value,
            )
            return None
        logger.info("Autellix KV retention: %s", config.kv_retention.value)
        return SchedulerRetention(
            config.kv_retention,
            config.retention_rule,
            self.kv_cache_manager.block_pool,
            block_size=self.block_size,
        )

    def _guard_pool(self, retention: SchedulerRetention) -> IdleExpiry:
        """Start ending idle holds on TTL: the entry points through which vLLM's engine loop
        touches the block pool run under the lock the expiry thread takes."""
        lock = threading.RLock()
        for name in _POOL_ENTRY_POINTS:
            setattr(self, name, _locked(getattr(self, name), lock))
        return IdleExpiry(retention, lock, lambda: self.autellix_clock())

    def shutdown(self) -> None:
        if self._idle_expiry is not None:
            self._idle_expiry.close()
        super().shutdown()

    def _retain(self, request: Request, retention: SchedulerRetention) -> None:
        """Before vLLM frees a request: hold its blocks if its program goes on, else end
        the program's hold (it ended, or a call of it was aborted: the client is gone)."""
        call = self.autellix.calls.get(self._call_of.get(request.request_id, ""))
        if call is None:
            return
        if request.status not in _RETAINED:
            retention.release(call.program_id)
            return
        extra = request.sampling_params.extra_args if request.sampling_params else None
        try:
            hint = decode_next_call(extra)
        except ProtocolError as exc:
            logger.warning("request %s: bad next-call hint (%s)", request.request_id, exc)
            hint = NextCallHint()
        blocks = self.kv_cache_manager.get_blocks(request.request_id).blocks[0]
        ttl = retention.finished(
            call.program_id,
            blocks,
            hint,
            tagged=bool(extra and extra.get(KEY_PROGRAM_ID)),
            now=self.autellix_clock(),
            priority=call.priority + call.service,
        )
        if ttl > 0 and self._idle_expiry is not None:
            self._idle_expiry.poke()

    def _yield_holds(self, retention: SchedulerRetention, now: float) -> int:
        """Expire holds, then free those the running calls' next blocks or the first waiting
        call need (holds ranked below it; any, when nothing runs). Returns the blocks holds
        of programs with no call here still keep (the core's budget leaves them out)."""
        retention.expire(now)
        if not len(retention.holds.ledger):
            return 0
        bs = self.block_size
        need = len(self.running) * (1 + -(-self.num_lookahead_tokens // bs))
        retention.make_room(need, priority=float("-inf"), force=True)  # running calls first
        waiting = self.autellix.waiting()
        if waiting:
            head = waiting[0]
            request = self._request_of.get(head.call_id)
            if request is not None:
                tokens = request.num_tokens + request.num_output_placeholders + 1
                own = retention.held_blocks(head.program_id)
                need += max(0, -(-tokens // bs) - own)
                retention.make_room(need, priority=head.priority, force=not self.running)
        return retention.held_by(self.autellix.program_ids())

    def _release_admitted(self, retention: SchedulerRetention) -> None:
        """A held program's call now runs on its prefix hits: the hold has done its job."""
        ledger = retention.holds.ledger
        for request in self.running:
            call = self.autellix.calls.get(self._call_of.get(request.request_id, ""))
            if call is not None and call.program_id in ledger:
                retention.release(call.program_id)

    def _budget(self, num_held: int = 0) -> KVBlockBudget:
        return KVBlockBudget(
            max_num_seqs=self.max_num_running_reqs,
            num_blocks=self.kv_cache_manager.block_pool.num_gpu_blocks - 1 - num_held,
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

    def _admit_only(self, decision: SchedulerDecision) -> RequestQueue | None:
        """Leave in ``self.waiting`` only the core's choices, best first; return the queue
        of the others (None when nothing waits). Costs what the core chose, not what waits."""
        held = self.waiting
        if not held:  # light load: nothing waits, so there is nothing to filter
            return None
        chosen = [
            request
            for call in decision.scheduled
            if (request := self._request_of.get(call.call_id)) is not None
            and request.status in _WAITING
            and request.num_computed_tokens == 0
        ]
        queue = create_request_queue(self.policy)
        for request in chosen:
            try:
                held.remove_request(request)
            except ValueError:  # not in this queue (vLLM keeps it elsewhere): not ours to pass
                continue
            queue.add_request(request)
        self.waiting = queue
        return held

    def _requeue(self, held: RequestQueue | None) -> None:
        """Put every still-waiting request back in one queue: the core's choices vLLM did not
        admit (and any request vLLM preempted itself) first, then the others. The order of
        the others does not matter: every step lets vLLM see only what the core chose."""
        if held is None:
            return
        left = self.waiting
        if left:
            held.prepend_requests(reversed(list(left)))
        self.waiting = held

    def _progress(
        self,
        scheduler_output: SchedulerOutput,
        model_runner_output: ModelRunnerOutput,
        step: LandedStep,
    ) -> list[CallProgress]:
        sampled = model_runner_output.sampled_token_ids
        index = model_runner_output.req_id_to_index
        call_of, requests, calls = self._call_of, self.requests, self.autellix.calls
        starts = step.plan.starts
        progress: list[CallProgress] = []
        for req_id, num_tokens in scheduler_output.num_scheduled_tokens.items():
            call_id = call_of.get(req_id)
            if call_id is None or call_id not in calls:
                continue
            request = requests.get(req_id)
            if request is None:
                continue
            row = index.get(req_id)
            num_sampled = len(sampled[row]) if sampled and row is not None else 0
            num_prefill = num_tokens
            if num_sampled:
                # A chunk that samples and whose last position is an output token was a decode
                # of that token; every other scheduled token is prefill (or recompute).
                start = starts.get(req_id)
                if start is None:  # not recorded: the step's positions are the request's now
                    start = request.num_computed_tokens - num_tokens
                if start + num_tokens > request.num_prompt_tokens:
                    num_prefill = max(0, num_tokens - 1)
            progress.append(CallProgress(call_id, num_prefill, num_sampled))
        return progress

    def _step_record(
        self, scheduler_output: SchedulerOutput, progress: list[CallProgress], step: LandedStep
    ) -> StepRecord:
        sampled = {p.call_id: p.num_decode_tokens for p in progress}
        chunks: list[tuple[int, int]] = []
        num_decode = num_context = 0
        for req_id, num_tokens in scheduler_output.num_scheduled_tokens.items():
            request = self.requests.get(req_id)
            if request is None:
                continue
            start = step.start_of(request, num_tokens)
            if num_tokens == 1 and start >= request.num_prompt_tokens:
                num_decode += 1
                num_context += start + 1
            else:
                chunks.append((num_tokens, start))
        return StepRecord(
            schedule_s=step.plan.schedule_s,
            model_s=step.model_s,
            prefill_chunks=chunks,
            num_decode_seqs=num_decode,
            num_decode_context_tokens=num_context,
            num_sampled=sum(1 for n in sampled.values() if n > 0),
            update_s=self._update_s,
            loop_s=step.plan.loop_s,
        )

    def _close_call(self, request: Request) -> ServiceReport | None:
        call_id = self._call_of.pop(request.request_id, None)
        if call_id is None:
            return None
        self._request_of.pop(call_id, None)
        if not self.autellix.has_call(call_id):
            return None
        now = self.autellix_clock()
        if request.status is RequestStatus.FINISHED_ABORTED:
            call = self.autellix.abort_call(call_id, now)
        else:
            call = self.autellix.finish_call(call_id, now)
        report = self._report(call, request)
        self.autellix_reports.add(report)
        return report

    def _report(self, call: CallRecord, request: Request) -> ServiceReport:
        preemptions, promotions = offsets_since(
            call.arrival_time, call.preempted_spans, call.promotion_times
        )
        return ServiceReport(
            call_id=call.call_id,
            request_id=request.request_id,
            program_id=call.program_id,
            service=call.service,
            wait=call.wait,
            num_preemptions=call.num_preemptions,
            num_output_tokens=request.num_output_tokens,
            aborted=call.status.name == "ABORTED",
            preemptions=preemptions,
            promotions=promotions,
        )


class AutellixScheduler(AutellixSchedulerMixin, Scheduler):
    """vLLM's ``Scheduler`` run by the Autellix core; the class to name in ``--scheduler-cls``.

    Constructing it with a config whose ``scheduler_config.async_scheduling`` is on (vLLM's
    default on GPUs) returns an ``AutellixAsyncScheduler`` instead, so naming this class never
    costs a GPU deployment vLLM's async scheduling.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> AutellixScheduler:
        if cls is AutellixScheduler and _async_scheduling(args, kwargs):
            cls = AutellixAsyncScheduler
        return super().__new__(cls)


class AutellixAsyncScheduler(AutellixScheduler, AsyncScheduler):
    """vLLM's ``AsyncScheduler`` (step N+1 scheduled while step N runs) run by the core."""


def _locked(method: Callable[..., Any], lock: threading.RLock) -> Callable[..., Any]:
    """``method``, run holding ``lock``."""

    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return method(*args, **kwargs)

    return call


def _async_scheduling(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether the ``vllm_config`` vLLM constructs the scheduler with asks for async."""
    vllm_config = kwargs.get("vllm_config", args[0] if args else None)
    scheduler_config = getattr(vllm_config, "scheduler_config", None)
    return bool(getattr(scheduler_config, "async_scheduling", False))


def _additional_config(vllm_config: Any) -> dict[str, Any]:
    extra = getattr(vllm_config, "additional_config", None)
    return extra if isinstance(extra, dict) else {}
