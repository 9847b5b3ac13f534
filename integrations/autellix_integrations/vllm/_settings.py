"""Plugin settings: the core's ``SchedulerConfig`` plus a few engine-side knobs.

Read from ``AUTELLIX_*`` environment variables (one per ``SchedulerConfig`` field, e.g.
``AUTELLIX_POLICY=atlas``, ``AUTELLIX_BASE_QUANTUM=0.1``) and then from vLLM's
``--additional-config '{"autellix": {...}}'``, which wins.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from autellix_backend.core import SchedulerConfig

ENV_PREFIX = "AUTELLIX_"
ADDITIONAL_CONFIG_KEY = "autellix"


class SettingsError(ValueError):
    """A plugin setting has a value that cannot be parsed."""


@dataclass(frozen=True, slots=True)
class PluginSettings:
    """Everything the vLLM plugin reads at start-up."""

    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    """Policy and queue settings handed to the core scheduler."""
    engine_id: str = "vllm-0"
    """Recorded on calls and programs this engine serves."""
    program_ttl: float = 600.0
    """Unused: engines keep no program rows any more (kept so existing configs still load)."""
    report_port: int = 0
    """Port of the service-report side channel for streaming clients; 0 disables it."""
    report_host: str = "127.0.0.1"
    """Address the side channel binds to."""
    step_log: str = ""
    """File to append one JSON line per engine step to (for calibration); empty disables it."""

    @classmethod
    def load(
        cls,
        additional_config: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> PluginSettings:
        """Build settings from the environment, overridden by ``additional_config``."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name in _all_names():
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None:
                values[name] = raw
        extra = (additional_config or {}).get(ADDITIONAL_CONFIG_KEY) or {}
        if not isinstance(extra, Mapping):
            raise SettingsError(f"additional_config[{ADDITIONAL_CONFIG_KEY!r}] must be a mapping")
        unknown = set(extra) - set(_all_names())
        if unknown:
            raise SettingsError(f"unknown Autellix settings: {sorted(unknown)}")
        values.update(extra)
        return cls._from_values(values)

    @classmethod
    def _from_values(cls, values: Mapping[str, Any]) -> PluginSettings:
        core: dict[str, Any] = {}
        for f in fields(SchedulerConfig):
            if f.name in values:
                core[f.name] = _coerce(f.name, values[f.name], _default(SchedulerConfig, f.name))
        try:
            scheduler = SchedulerConfig(**core)
        except ValueError as exc:
            raise SettingsError(str(exc)) from exc
        own: dict[str, Any] = {}
        for name in _OWN:
            if name in values:
                own[name] = _coerce(name, values[name], _default(cls, name))
        return cls(scheduler=scheduler, **own)


_OWN = ("engine_id", "program_ttl", "report_port", "report_host", "step_log")


def _all_names() -> list[str]:
    return [f.name for f in fields(SchedulerConfig)] + list(_OWN)


def _default(owner: type, name: str) -> Any:
    for f in fields(owner):
        if f.name == name:
            if f.default is not MISSING:
                return f.default
            if f.default_factory is not MISSING:
                return f.default_factory()
    raise KeyError(name)


def _coerce(name: str, raw: Any, default: Any) -> Any:
    """Parse ``raw`` (a string from the environment or a JSON value) like ``default``."""
    if not isinstance(raw, str):
        return tuple(raw) if isinstance(default, tuple) else raw
    text = raw.strip()
    try:
        if isinstance(default, bool):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if name == "starvation_beta":
            return None if text.lower() in ("", "none", "off") else float(text)
        if isinstance(default, tuple):
            return tuple(float(x) for x in text.split(",") if x.strip())
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
    except ValueError as exc:
        raise SettingsError(f"cannot parse Autellix setting {name}={raw!r}") from exc
    return text
