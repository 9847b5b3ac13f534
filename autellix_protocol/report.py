"""What an engine tells the front end about a call that ended (finished, aborted, failed)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

from autellix_protocol.snapshot import ProtocolError

REPORT_KEY: Final = "autellix"
"""Key of the report inside a finished request's ``kv_transfer_params``."""

SIBLINGS_KEY: Final = "siblings"
"""Key, inside a report, of the reports of the same call's engine requests that ended before
it (the other ``n`` choices): vLLM keeps only the last ``kv_transfer_params`` of outputs it
merges, so each report carries the earlier ones and the front end adds up the distinct ones."""


@dataclass(frozen=True, slots=True)
class ServiceReport:
    """One call's consumption, as the engine measured it.

    >>> ServiceReport.from_dict(ServiceReport("c", "r", "p", 0.5).as_dict()).service
    0.5
    """

    call_id: str
    request_id: str
    program_id: str
    service: float
    """Service the call attained on the engine (every call in a step attains its time)."""
    wait: float = 0.0
    """Seconds the call spent queued or preempted on the engine."""
    num_preemptions: int = 0
    num_output_tokens: int = 0
    aborted: bool = False
    preemptions: tuple[tuple[float, float], ...] = ()
    """Each preemption as (start, end), seconds after the call arrived on the engine (optional:
    older engines send none; at most the first 64)."""
    promotions: tuple[float, ...] = ()
    """Seconds after its arrival at which the anti-starvation rule moved the call to Q1."""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: Mapping[str, Any]) -> ServiceReport:
        """Decode a report; unknown keys are ignored, bad values raise ``ProtocolError``."""
        try:
            fields = {k: value[k] for k in cls.__dataclass_fields__ if k in value}
            if "preemptions" in fields:
                fields["preemptions"] = event_spans(fields["preemptions"])
            if "promotions" in fields:
                fields["promotions"] = tuple(float(t) for t in fields["promotions"])
            report = cls(**fields)
            float(report.service)
        except (TypeError, ValueError) as exc:
            raise ProtocolError(f"malformed service report: {exc}") from exc
        return report


def distinct_reports(report: Mapping[str, Any], request_id: str = "") -> dict[str, dict[str, Any]]:
    """A call's reports by engine request id: the report itself and each earlier choice in
    ``SIBLINGS_KEY`` (without their own ``SIBLINGS_KEY``), once each. A report without a
    ``request_id`` is filed under ``request_id``."""
    siblings = report.get(SIBLINGS_KEY)
    reports: dict[str, dict[str, Any]] = {}
    for each in (*(siblings if isinstance(siblings, list) else ()), report):
        if isinstance(each, Mapping):
            own = {k: v for k, v in each.items() if k != SIBLINGS_KEY}
            reports[str(own.get("request_id") or request_id)] = own
    return reports


def service_of(report: Any) -> float | None:
    """The call's service in a report-like mapping (``kv_transfer_params[REPORT_KEY]``), or
    None: the report's own plus that of each distinct earlier choice in ``SIBLINGS_KEY``.

    >>> service_of({"request_id": "b", "service": 2.0,
    ...             "siblings": [{"request_id": "a", "service": 1.5}]})
    3.5
    """
    if not isinstance(report, Mapping):
        return None
    try:
        services = [float(r.get("service", 0.0)) for r in distinct_reports(report).values()]
    except (TypeError, ValueError):
        return None
    return max(0.0, sum(services))


def event_spans(value: Any) -> tuple[tuple[float, float], ...]:
    """``[[start, end], ...]`` as float pairs; raises ``TypeError``/``ValueError`` if malformed."""
    return tuple((float(start), float(end)) for start, end in value)


def offsets_since(
    arrival: float, spans: Any, times: Any
) -> tuple[tuple[tuple[float, float], ...], tuple[float, ...]]:
    """An engine's preemption spans and promotion times as offsets after ``arrival`` (both
    in the engine's clock), the form ``ServiceReport`` carries; an open span ends at its
    start."""
    pairs = tuple(
        (start - arrival, (start if end is None else end) - arrival) for start, end in spans or ()
    )
    return pairs, tuple(t - arrival for t in times or ())
