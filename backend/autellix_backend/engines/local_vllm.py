"""An in-process vLLM engine (``AsyncLLM``) scheduled by the Autellix plugin.

With ``plugin=True`` (the default) the engine's scheduler is
``autellix_integrations.vllm.AutellixScheduler`` configured with this adapter's
``SchedulerConfig``; each call's program tag travels in ``SamplingParams.extra_args`` and its
service comes back in the final output's ``kv_transfer_params``. With ``plugin=False`` it is
stock vLLM (``scheduling_policy`` ``"fcfs"`` or ``"priority"``; with ``"priority"`` the tag's
``snapshot.service`` is sent as the request priority, the weaker client-side hint).

Requests are answered by vLLM's own OpenAI serving layer (``vllm_serving``), so the
responses are those of ``vllm serve`` with the same options; the tag goes in as
``vllm_xargs``.

Model: a path or hub name; None writes and serves the tiny local model with dummy weights.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from autellix_backend.core import KVRetention, SchedulerConfig
from autellix_backend.engines.base import (
    EngineAdapter,
    EngineChunk,
    EngineError,
    EngineLoad,
    EngineRequest,
    Notices,
    RequestRejected,
    event_text,
)
from autellix_backend.engines.kv_events import KVEventSource
from autellix_backend.engines.vllm_serving import CallMeter, VLLMServing
from autellix_backend.engines.vllm_xargs import vllm_xargs
from autellix_protocol import end_program_request_id
from autellix_protocol.report import REPORT_KEY

if TYPE_CHECKING:
    from vllm.v1.engine.async_llm import AsyncLLM

log = logging.getLogger("autellix.engines.local_vllm")

PLUGIN_CLASS = "autellix_integrations.vllm.AutellixScheduler"


class LocalVLLMEngine(EngineAdapter):
    """An ``EngineAdapter`` over an in-process ``vllm.v1.engine.async_llm.AsyncLLM``.

    Args:
        engine_id: name in the gateway.
        model: weights to load, or None for the tiny local model (dummy weights).
        served_model: name clients ask for (default: ``model`` or ``"tiny"``).
        scheduler: the core's settings, handed to the plugin.
        plugin: run the Autellix scheduler inside vLLM; False runs stock vLLM.
        scheduling_policy: stock vLLM's policy when ``plugin`` is False.
        max_num_seqs: batch size limit.
        max_model_len: context limit.
        block_size: KV block size (the CPU backend wants multiples of 32).
        kv_cache_memory_bytes: KV cache size; None lets vLLM decide.
        default_max_tokens: output limit of a direct ``generate`` call that sets none
            (the gateway always sets one).
        plugin_options: other plugin settings (``step_log``, ``report_port``, ``program_ttl``).
        engine_args: any other ``AsyncEngineArgs`` fields (``reasoning_parser``,
            ``structured_outputs_config``...).
        serving_options: options of ``vllm serve``'s OpenAI layer, by field name
            (``enable_auto_tool_choice``, ``tool_call_parser``, ``chat_template``...).
        kv_events: publish the engine's KV events (on a private ``ipc://`` socket), for the
            ``cache_aware`` balancer.
    """

    openai_native = True

    def __init__(
        self,
        *,
        engine_id: str = "vllm-0",
        model: str | None = None,
        served_model: str | None = None,
        scheduler: SchedulerConfig | None = None,
        plugin: bool = True,
        scheduling_policy: str = "fcfs",
        max_num_seqs: int = 16,
        max_model_len: int = 16384,
        block_size: int = 32,
        kv_cache_memory_bytes: int | None = 256 * 2**20,
        default_max_tokens: int = 256,
        plugin_options: Mapping[str, Any] | None = None,
        engine_args: Mapping[str, Any] | None = None,
        serving_options: Mapping[str, Any] | None = None,
        kv_events: bool = False,
    ) -> None:
        if scheduling_policy not in ("fcfs", "priority"):
            raise ValueError("scheduling_policy must be 'fcfs' or 'priority'")
        if max_num_seqs < 1 or max_model_len < 1 or block_size < 1 or default_max_tokens < 0:
            raise ValueError("max_num_seqs, max_model_len and block_size must be positive")
        self.engine_id = engine_id
        self.model = served_model or model or "tiny"
        self.program_aware = plugin
        self.scheduler_config = scheduler or SchedulerConfig()
        self.default_max_tokens = default_max_tokens
        self._weights = model
        self._plugin = plugin
        self._plugin_options = dict(plugin_options or {})
        self._policy = scheduling_policy
        self._args: dict[str, Any] = {
            "max_num_seqs": max_num_seqs,
            "max_model_len": max_model_len,
            "block_size": block_size,
            "kv_cache_memory_bytes": kv_cache_memory_bytes,
            "enforce_eager": True,
            "disable_log_stats": True,
            **dict(engine_args or {}),
        }
        self._serving_options = dict(serving_options or {})
        self._kv_endpoint = kv_events_ipc(engine_id) if kv_events else None
        self._llm: AsyncLLM | None = None
        self._serving: VLLMServing | None = None
        self._live: set[str] = set()
        self._kv_usage: float | None = None
        self._notices = Notices(engine_id)

    # Life cycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Build the engine in a worker thread: loading takes seconds to minutes, and the
        gateway's event loop must keep serving the other engines meanwhile. The engine's
        asyncio parts attach to the loop on its first call."""
        if self._llm is not None:
            return
        from vllm.config import KVEventsConfig, StructuredOutputsConfig
        from vllm.engine.arg_utils import AsyncEngineArgs
        from vllm.v1.engine.async_llm import AsyncLLM

        values = self.engine_args()
        for key, config_class in (
            ("structured_outputs_config", StructuredOutputsConfig),
            ("kv_events_config", KVEventsConfig),
        ):
            if isinstance(values.get(key), Mapping):
                values[key] = config_class(**values[key])
        args = AsyncEngineArgs(**values)
        loggers = [_usage_logger(self)]
        self._llm = await asyncio.to_thread(AsyncLLM.from_engine_args, args, stat_loggers=loggers)
        self._serving = await VLLMServing.build(
            self._llm,
            model=str(values["model"]),
            served_model=self.model,
            options=self._serving_options,
        )

    async def restart(self) -> None:
        """Replace a dead engine (its EngineCore process exited) with a fresh one."""
        await self.aclose()
        self._live.clear()
        await self.start()

    def engine_core_pids(self) -> list[int]:
        """Process ids of the engine's EngineCore processes (empty before ``start``)."""
        return [p.pid for p in self._core_processes() if p.pid is not None]

    def failure(self) -> str | None:
        """Why the engine is dead, known without I/O: an EngineCore process exited, or vLLM
        marked the engine dead. The pool polls this to take a crashed engine out of rotation
        within a second, before any probe or call notices."""
        llm = self._llm
        if llm is None:
            return None
        for process in self._core_processes():
            if process.exitcode is not None:
                return f"EngineCore process {process.pid} exited with code {process.exitcode}"
        if llm.errored:
            return "vLLM reports the engine dead"
        return None

    def _core_processes(self) -> list[Any]:
        """vLLM's EngineCore processes (``multiprocessing`` processes), read from the internals
        of the pinned vLLM version; empty when they are not where that version keeps them."""
        core = getattr(self._llm, "engine_core", None)
        resources = getattr(core, "resources", None)
        manager = getattr(resources, "engine_manager", None)
        return list(getattr(manager, "processes", None) or ())

    def engine_args(self) -> dict[str, Any]:
        """The ``AsyncEngineArgs`` this adapter starts vLLM with."""
        args = dict(self._args)
        if self._weights is None:
            from autellix_backend.models import ensure_tiny_model
            from autellix_backend.models.tiny import TinyModelSpec

            args.setdefault("model", str(ensure_tiny_model()))
            args.setdefault("load_format", "dummy")
            # vLLM's CPU platform serves a float32 config in bf16 unless told: the tiny model
            # runs in float32 on purpose (no AMX kernels; docs/engines.md, "CPUs with AMX").
            args.setdefault("dtype", TinyModelSpec().dtype)
        else:
            args.setdefault("model", self._weights)
        args.setdefault("served_model_name", self.model)
        if self._kv_endpoint is not None:
            args["kv_events_config"] = {
                "enable_kv_cache_events": True,
                "publisher": "zmq",
                "endpoint": self._kv_endpoint,
            }
            args.setdefault("enable_prefix_caching", True)
        if self._plugin:
            args["scheduler_cls"] = PLUGIN_CLASS
            args["additional_config"] = {
                **dict(args.get("additional_config") or {}),
                REPORT_KEY: {
                    **plugin_config(self.scheduler_config, engine_id=self.engine_id),
                    **self._plugin_options,
                },
            }
        else:
            args["scheduling_policy"] = self._policy
        return args

    def kv_event_source(self) -> KVEventSource | None:
        if self._kv_endpoint is None:
            return None
        args = self.engine_args()
        return KVEventSource(
            endpoint=self._kv_endpoint,
            tokenizer=str(args.get("tokenizer") or args["model"]),
            block_size=int(args["block_size"]),
            chat_template=self._serving_options.get("chat_template"),
        )

    async def aclose(self) -> None:
        llm, self._llm = self._llm, None
        self._serving = None
        if llm is not None:
            llm.shutdown()

    async def health(self) -> bool:
        if self._llm is None or self.failure() is not None:
            return False
        try:
            await self._llm.check_health()
        except Exception:
            return False
        return True

    def kv_usage(self) -> float | None:
        """Share of the KV cache in use after the engine's last step (vLLM's
        ``SchedulerStats.kv_cache_usage``, 0..1; the tracing UI's Engines view), None before
        the first step."""
        return self._kv_usage

    def load(self) -> EngineLoad:
        seqs = int(self._args["max_num_seqs"])
        live = len(self._live)
        return EngineLoad(num_running=min(live, seqs), num_waiting=max(0, live - seqs))

    # Calls ---------------------------------------------------------------------

    async def generate(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        """Answer through vLLM's serving layer: ``EngineChunk.event`` holds its objects (a
        whole response, or the stream's chunks, as the body's ``stream`` says); an empty
        chunk marks the first token; the last chunk carries usage and the plugin's report."""
        llm = self._require()
        serving = self._serving
        if serving is None:
            raise EngineError(f"vLLM engine {self.engine_id} is not started")
        meter = CallMeter()
        self._live.add(request.request_id)
        try:
            async for event in serving.respond(request.kind, self._engine_body(request), meter):
                yield (
                    EngineChunk()
                    if event is None
                    else EngineChunk(text=event_text(event), event=event)
                )
        except (EngineError, RequestRejected):
            raise
        except Exception as exc:
            raise self._classify(llm, exc) from exc
        finally:
            self._live.discard(request.request_id)
        yield EngineChunk(
            finish_reason=meter.finish_reason or "stop", usage=meter.usage(), extra=meter.report()
        )

    def end_program(self, program_id: str) -> None:
        """Tell the plugin the program ended, so it releases the program's held KV at once
        (``END_PROGRAM_PREFIX``: an abort, sent to the engine core, of a request id no
        request has)."""
        llm = self._llm
        if llm is None or not self._plugin or self.scheduler_config.kv_retention is KVRetention.OFF:
            return
        # Straight to the engine core: AsyncLLM.abort passes on only the ids it tracks.
        notice = llm.engine_core.abort_requests_async([end_program_request_id(program_id)])
        self._notices.send(notice, "program-end notice")

    async def abort(self, request_id: str) -> None:
        """Nothing to do: closing the call's stream cancels it in vLLM's serving layer, and
        ``AsyncLLM`` aborts the engine requests of a cancelled call."""

    # Helpers -------------------------------------------------------------------

    def _classify(self, llm: AsyncLLM, exc: Exception) -> Exception:
        """A request the engine rejected (ValueError: 400) vs an engine that died (EngineError).

        Only a dead engine may take itself out of rotation: a prompt longer than the model's
        context must cost its own caller a 400, not every other program its calls.
        """
        from vllm.exceptions import VLLMClientError

        if isinstance(exc, ValueError | TypeError | VLLMClientError):
            return ValueError(str(exc))
        if llm.errored:
            # The cause (the EngineCore's exit code) says more than vLLM's EngineDeadError.
            return EngineError(self.failure() or f"vLLM engine {self.engine_id} failed: {exc}")
        return RuntimeError(f"vLLM engine {self.engine_id} could not serve the call: {exc}")

    def _require(self) -> AsyncLLM:
        if self._llm is None:
            raise EngineError(f"vLLM engine {self.engine_id} is not started")
        if self._llm.errored:
            raise EngineError(f"vLLM engine {self.engine_id} has failed")
        return self._llm

    def _engine_body(self, request: EngineRequest) -> dict[str, Any]:
        """The request body with this call's id and Autellix metadata (``vllm_xargs``)."""
        body = dict(request.body)
        body["request_id"] = request.request_id
        if body.get("max_tokens") is None and body.get("max_completion_tokens") is None:
            body["max_tokens"] = self.default_max_tokens
        if self._plugin:
            body["vllm_xargs"] = vllm_xargs(body, request.tag)
        elif self._policy == "priority":
            body["priority"] = int(request.tag.service_at_arrival)
        return body


def _usage_logger(adapter: LocalVLLMEngine) -> Callable[[Any, int], Any]:
    """A vLLM stat-logger factory that keeps each step's KV cache usage on ``adapter``.

    Giving ``AsyncLLM`` a custom logger turns on vLLM's scheduler stats (one small record a
    step, read on the event loop) without its default log lines.
    """
    from vllm.v1.metrics.loggers import StatLoggerBase

    class UsageLogger(StatLoggerBase):
        def __init__(self, vllm_config: Any, engine_index: int = 0) -> None:
            pass

        def record(
            self,
            scheduler_stats: Any,
            iteration_stats: Any,
            mm_cache_stats: Any = None,
            engine_idx: int = 0,
        ) -> None:
            if scheduler_stats is not None:
                adapter._kv_usage = float(scheduler_stats.kv_cache_usage)

        def log_engine_initialized(self) -> None:
            pass

    return UsageLogger


def kv_events_ipc(engine_id: str) -> str:
    """A private ``ipc://`` address for one engine's KV events (vLLM binds it, the gateway
    connects): nothing outside this machine can read it, and no port is taken."""
    name = "".join(c if c.isalnum() else "-" for c in engine_id)[:32]
    folder = tempfile.mkdtemp(prefix="autellix-kv-")
    return f"ipc://{os.path.join(folder, name)}.sock"


def plugin_config(config: SchedulerConfig, *, engine_id: str) -> dict[str, Any]:
    """``SchedulerConfig`` as the plugin's ``additional_config["autellix"]`` (JSON values)."""
    values = asdict(config)
    values["policy"] = config.policy.value
    values["service_unit"] = config.service_unit.value
    values["queue_boundaries"] = list(config.queue_boundaries)
    values["engine_id"] = engine_id
    return values
