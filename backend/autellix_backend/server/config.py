"""Settings of ``autellix serve``: engines, scheduling policy, balancer, auth, limits.

Read from a YAML or TOML file (``load_config``) and overridden by command-line flags; every
field has a default so an empty file (or none) gives a working single-engine service.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from autellix_backend.core import Policy, SchedulerConfig
from autellix_backend.core.registry import parse_kind


class EngineKind(StrEnum):
    """Engine adapter kinds (``engine_factory.ENGINES`` holds their factories)."""

    LOCAL_VLLM = "local_vllm"
    """In-process vLLM with the Autellix scheduler plugin."""
    REMOTE_VLLM = "remote_vllm"
    """A vLLM server running the plugin, behind a URL."""
    OPENAI = "openai"
    """Any OpenAI-compatible server (a priority hint only)."""
    SIM = "sim"
    """The simulated engine."""


ENGINE_KINDS = tuple(k.value for k in EngineKind)

_KEY_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class ConfigError(ValueError):
    """The configuration file or flags hold a value the service cannot run with."""


@dataclass(frozen=True, slots=True)
class EngineSpec:
    """One engine behind the gateway."""

    kind: str = EngineKind.LOCAL_VLLM.value
    """One of ``EngineKind``."""
    engine_id: str = ""
    """Name in metrics and logs; defaults to ``<kind>-<index>``."""
    model: str = ""
    """Model name clients send; for vLLM kinds also the weights to load (empty: the tiny model)."""
    url: str = ""
    """Base URL of a remote engine (``remote_vllm``, ``openai``)."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """Adapter-specific settings (simulator profile and time scale, vLLM engine args...)."""
    placement: str = "local"
    """``local``: in the gateway's process (or behind ``url``); ``ray``: in a Ray actor placed
    by Ray (``engines/ray_engine.py``)."""
    resources: Mapping[str, float] = field(default_factory=dict)
    """Ray placement: what the actor needs, e.g. ``{GPU: 1}`` (default ``{CPU: 1}``)."""
    max_restarts: int = -1
    """Ray placement: times Ray restarts a dead engine actor (-1: without limit)."""
    num_engines: int = 1
    """Replicas of this engine, named ``<id>-0``, ``<id>-1``...; with Ray placement they share
    one placement group, a bundle per replica."""
    tensor_parallel_size: int = 1
    """vLLM kinds: GPUs one replica spans (vLLM's ``tensor_parallel_size``); with Ray placement
    the replica's bundle holds that many GPUs, on one node."""
    placement_strategy: str = "PACK"
    """Ray placement of the replicas' bundles: ``PACK``, ``SPREAD``, ``STRICT_PACK``,
    ``STRICT_SPREAD`` (Ray's placement group strategies)."""

    def validate(self) -> None:
        kind = parse_kind(EngineKind, self.kind, what="engine kind", error=ConfigError)
        if kind in (EngineKind.REMOTE_VLLM, EngineKind.OPENAI) and not self.url:
            raise ConfigError(f"engine kind {self.kind!r} needs a url")
        if self.placement not in ("local", "ray"):
            raise ConfigError(f"engine placement must be local or ray, got {self.placement!r}")
        if self.num_engines < 1 or self.tensor_parallel_size < 1:
            raise ConfigError(
                f"engine {self.engine_id}: num_engines and tensor_parallel_size must be >= 1"
            )
        if self.tensor_parallel_size > 1 and kind is not EngineKind.LOCAL_VLLM:
            raise ConfigError(
                f"engine {self.engine_id}: tensor_parallel_size applies to local_vllm engines"
            )
        if self.placement_strategy not in PLACEMENT_STRATEGIES:
            raise ConfigError(
                f"engine {self.engine_id}: placement_strategy must be one of "
                f"{', '.join(PLACEMENT_STRATEGIES)}, got {self.placement_strategy!r}"
            )

    def replicas(self) -> tuple[EngineSpec, ...]:
        """One spec per replica (``num_engines`` of 1 each); a single one keeps its id."""
        if self.num_engines == 1:
            return (self,)
        return tuple(
            replace(self, engine_id=f"{self.engine_id}-{i}", num_engines=1)
            for i in range(self.num_engines)
        )


PLACEMENT_STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds that keep one client from exhausting the service."""

    max_body_bytes: int = 4 * 1024 * 1024
    """Largest request body accepted (413 beyond it)."""
    max_prompt_tokens: int = 32_768
    """Largest prompt, in the gateway's estimate of tokens (400 beyond it)."""
    max_tokens: int = 8_192
    """Largest ``max_tokens`` a request may ask for (400 beyond it)."""
    default_max_tokens: int = 256
    """Output tokens of a request that sets no ``max_tokens``."""
    max_programs: int = 10_000
    """Programs kept in the process table; the least recently active idle one is evicted."""
    max_calls_per_program: int = 1_000
    """Finished calls kept per program (older ones leave the table)."""
    max_dag_nodes: int = 2_000
    """DAG nodes kept per program (the oldest are dropped past it)."""
    program_history: int = 1_000
    """Ended programs kept readable (``GET /v1/programs/{id}`` after ``DELETE``)."""
    max_inflight_calls: int = 4_096
    """Calls in flight across all engines; more get 429."""
    max_id_length: int = 256
    """Longest program, thread or call id accepted."""

    def validate(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) < 1:
                raise ConfigError(f"limits.{f.name} must be at least 1")


@dataclass(frozen=True, slots=True)
class ShardingConfig:
    """Several gateways sharing the engines, each owning the programs that hash to it
    (``server/sharding.py``, docs/deploy.md)."""

    gateways: tuple[str, ...] = ()
    """Base URL of every gateway, this one included; empty: this gateway owns every program."""
    self_url: str = ""
    """This gateway's entry in ``gateways``."""

    def validate(self) -> None:
        for url in self.gateways:
            if not url.startswith(("http://", "https://")):
                raise ConfigError(f"sharding.gateways: {url!r} is not an http(s) URL")
        if self.gateways and self.self_url not in self.gateways:
            raise ConfigError("sharding.self_url must be one of sharding.gateways")


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """Everything ``autellix serve`` needs."""

    host: str = "127.0.0.1"
    port: int = 8000
    engines: tuple[EngineSpec, ...] = (EngineSpec(),)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    """The scheduling core's settings (policy, K queues, quanta, beta...), shared by the
    process table and every program-aware engine. A file may give ``scheduler: {...}`` and a
    top-level ``policy`` (which overrides ``scheduler.policy``)."""
    balancer: str = "locality"
    """Load balancer: ``round_robin``, ``least_used``, ``locality``, ``prefix_aware``."""
    api_keys: Mapping[str, str] = field(default_factory=dict)
    """Key name -> secret. Empty: no authentication."""
    admin_key: str | None = None
    """Name of the key (in ``api_keys``) that sees every owner's programs in the tracing UI."""
    idle_timeout_s: float = 600.0
    """A program with no call in flight and no activity for this long is ended."""
    health_interval_s: float = 5.0
    """Seconds between engine health checks."""
    health_timeout_s: float = 5.0
    """A health check slower than this counts as a failure."""
    restart_backoff_s: float = 1.0
    """Wait before restarting an in-process engine that died; doubles per failed restart."""
    restart_backoff_max_s: float = 60.0
    """Longest wait between restarts of an engine that keeps failing."""
    shutdown_grace_s: float = 10.0
    """On shutdown, calls in flight get this long to finish."""
    keep_alive_s: float = 60.0
    """Idle keep-alive connections are closed after this long. Longer than uvicorn's 5 s
    default: under load a short timer can fire before a pooled connection's next request
    is read, and the client sees a reset."""
    log_level: str = "info"
    limits: Limits = field(default_factory=Limits)
    sharding: ShardingConfig = field(default_factory=ShardingConfig)
    ray_address: str | None = None
    """Ray cluster for engines with ``placement: ray`` (``auto``, ``ray://head:10001``); None
    joins the cluster this process is in, or starts a local one."""

    @property
    def policy(self) -> str:
        """Name of the scheduling policy (``scheduler.policy``)."""
        return self.scheduler.policy.value

    def validate(self) -> ServerConfig:
        """Check every field and return ``self``; raises ``ConfigError``."""
        if not self.engines:
            raise ConfigError("at least one engine is needed")
        for spec in self.engines:
            spec.validate()
        ids = [r.engine_id for spec in self.engines for r in spec.replicas()]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"engine ids must be unique, got {ids}")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port must be in 1..65535, got {self.port}")
        for name in ("idle_timeout_s", "health_interval_s", "health_timeout_s", "keep_alive_s"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive")
        if not 0 < self.restart_backoff_s <= self.restart_backoff_max_s:
            raise ConfigError("need 0 < restart_backoff_s <= restart_backoff_max_s")
        if self.shutdown_grace_s < 0:
            raise ConfigError("shutdown_grace_s must be >= 0")
        for name, secret in self.api_keys.items():
            if not _KEY_NAME.match(name):
                raise ConfigError(f"api key name {name!r} must match {_KEY_NAME.pattern}")
            if not secret:
                raise ConfigError(f"api key {name!r} is empty")
        if self.admin_key is not None and self.admin_key not in self.api_keys:
            raise ConfigError(f"admin_key {self.admin_key!r} names no key in api_keys")
        self.limits.validate()
        self.sharding.validate()
        return self


def load_config(path: str | Path | None = None, **overrides: Any) -> ServerConfig:
    """Read a YAML (``.yaml``/``.yml``) or TOML (``.toml``) file, apply ``overrides``, validate.

    Overrides whose value is None are ignored, so command-line flags left unset keep the
    file's value.
    """
    data: dict[str, Any] = {}
    if path is not None:
        data = _read_file(Path(path))
    data.update({k: v for k, v in overrides.items() if v is not None})
    return config_from_mapping(data)


def config_from_mapping(data: Mapping[str, Any]) -> ServerConfig:
    """Build a validated ``ServerConfig`` from plain data (a parsed file)."""
    known = {f.name for f in fields(ServerConfig)} | {"policy"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown settings: {', '.join(unknown)}")
    values = dict(data)
    if "engines" in values:
        values["engines"] = tuple(_engine(i, e) for i, e in enumerate(values["engines"] or ()))
    else:
        values["engines"] = (_engine(0, {}),)
    if "limits" in values:
        values["limits"] = _dataclass_from(Limits, values["limits"] or {}, "limits")
    if isinstance(values.get("sharding"), Mapping):
        sharding = dict(values["sharding"])
        sharding["gateways"] = tuple(str(u).rstrip("/") for u in sharding.get("gateways") or ())
        sharding["self_url"] = str(sharding.get("self_url") or "").rstrip("/")
        values["sharding"] = _dataclass_from(ShardingConfig, sharding, "sharding")
    if "api_keys" in values:
        values["api_keys"] = _api_keys(values["api_keys"])
    values["scheduler"] = _scheduler(values.get("scheduler"), values.pop("policy", None))
    try:
        config = ServerConfig(**values)
    except TypeError as exc:
        raise ConfigError(str(exc)) from None
    return config.validate()


def _read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml", ".json"):
            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(f"config file must end in .yaml, .yml or .toml: {path}")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot parse {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of settings")
    return data


def _engine(index: int, raw: Any) -> EngineSpec:
    if isinstance(raw, EngineSpec):
        spec = raw
    elif isinstance(raw, Mapping):
        values = dict(raw)
        if "id" in values:
            values["engine_id"] = values.pop("id")
        spec = _dataclass_from(EngineSpec, values, f"engines[{index}]")
    else:
        raise ConfigError(f"engines[{index}] must be a mapping")
    if not spec.engine_id:
        spec = replace(spec, engine_id=f"{spec.kind}-{index}")
    return spec


def _scheduler(raw: Any, policy: Any) -> SchedulerConfig:
    """``SchedulerConfig`` from a mapping (or one already built), ``policy`` overriding it."""
    try:
        if isinstance(raw, SchedulerConfig):
            config = raw
        else:
            values = raw if raw is not None else {}
            if isinstance(values, Mapping) and "queue_boundaries" in values:
                values = {**values, "queue_boundaries": tuple(values["queue_boundaries"] or ())}
            config = _dataclass_from(SchedulerConfig, values, "scheduler")
        return config if policy is None else replace(config, policy=Policy.parse(policy))
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(f"scheduler: {exc}") from None


def _api_keys(raw: Any) -> dict[str, str]:
    """Accept ``{name: secret}`` or a list of secrets (named ``key-0``, ``key-1``...)."""
    if isinstance(raw, Mapping):
        return {str(k): str(v) for k, v in raw.items()}
    if isinstance(raw, list | tuple):
        return {f"key-{i}": str(v) for i, v in enumerate(raw)}
    raise ConfigError("api_keys must be a mapping of name to key, or a list of keys")


def _dataclass_from(cls: Any, raw: Any, where: str) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a mapping")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"unknown settings in {where}: {', '.join(unknown)}")
    try:
        return cls(**raw)
    except TypeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
