"""Service reports: what the plugin tells the front end about each ended call (the report
type and its codec are the protocol's ``ServiceReport``)."""

from __future__ import annotations

import threading
from collections import OrderedDict

from autellix_protocol.report import ServiceReport

__all__ = ["ServiceReport", "ServiceReportLog"]


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
