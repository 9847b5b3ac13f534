"""Service reports: what the plugin tells the backend about each finished call."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class ServiceReport:
    """One finished (or aborted) call, as returned in ``kv_transfer_params["autellix"]``."""

    call_id: str
    request_id: str
    program_id: str
    service: float
    """Engine seconds this call attained (every call in a step attains the step's time)."""
    program_service: float
    """The program's priority in the engine's table after this call (PLAS sum / ATLAS path)."""
    wait: float
    """Seconds the call spent queued or preempted."""
    num_preemptions: int
    num_output_tokens: int
    aborted: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> ServiceReport:
        return cls(**{k: value[k] for k in cls.__dataclass_fields__ if k in value})


class ServiceReportLog:
    """The most recent reports by call id, bounded so a long-running engine stays small."""

    def __init__(self, max_size: int = 10_000) -> None:
        self.max_size = max_size
        self._reports: OrderedDict[str, ServiceReport] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, report: ServiceReport) -> None:
        with self._lock:
            self._reports[report.call_id] = report
            self._reports.move_to_end(report.call_id)
            while len(self._reports) > self.max_size:
                self._reports.popitem(last=False)

    def get(self, call_id: str) -> ServiceReport | None:
        with self._lock:
            return self._reports.get(call_id)

    def __len__(self) -> int:
        return len(self._reports)
