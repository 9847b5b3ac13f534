"""Program sessions with the backend, opened and closed in the background.

The app never waits: requests go on a bounded queue served by one daemon thread (so a
program's start always precedes its end), each with a short timeout; failures are logged once
and dropped.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import httpx

_log = logging.getLogger(__name__)
_MAX_PENDING = 10_000


@dataclass(frozen=True, slots=True)
class _Request:
    action: Literal["start", "end"]
    program_id: str


class SessionClient:
    """Opens (``POST /v1/programs``) and closes (``DELETE /v1/programs/{id}``) sessions."""

    def __init__(
        self,
        root_url: str,
        *,
        api_key: str | None,
        timeout: float,
        before_end: Callable[[], object] | None = None,
    ) -> None:
        """``before_end`` runs on the worker before each close, e.g. to flush the program's
        spans so that they reach the backend while the program is still in its table."""
        self._before_end = before_end
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=root_url, headers=headers, timeout=timeout)
        self._queue: queue.Queue[_Request | None] = queue.Queue(maxsize=_MAX_PENDING)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._warned = False
        self._closed = False

    def start(self, program_id: str) -> None:
        """Queue the opening of ``program_id``'s session."""
        self._put(_Request("start", program_id))

    def end(self, program_id: str) -> None:
        """Queue the closing of ``program_id``'s session."""
        self._put(_Request("end", program_id))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued request was sent (or failed); False on timeout."""
        worker = self._thread
        if worker is None or not worker.is_alive():
            return True
        pending = self._queue
        with pending.all_tasks_done:
            return pending.all_tasks_done.wait_for(lambda: pending.unfinished_tasks == 0, timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (up to ``timeout``), then stop the worker."""
        self.flush(timeout)
        self._closed = True
        if self._thread is not None and self._thread.is_alive():
            with contextlib.suppress(queue.Full):
                self._queue.put_nowait(None)
            self._thread.join(timeout)
        self._client.close()

    def _put(self, request: _Request) -> None:
        if self._closed:
            return
        self._ensure_worker()
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            self._warn("session queue full; dropping %s of %s", request.action, request.program_id)

    def _ensure_worker(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="autellix-sessions", daemon=True)
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        while True:
            request = self._queue.get()
            try:
                if request is None:
                    return
                self._send(request)
            finally:
                self._queue.task_done()

    def _send(self, request: _Request) -> None:
        try:
            if request.action == "start":
                body = {"program_id": request.program_id}
                response = self._client.post("/v1/programs", json=body)
            else:
                if self._before_end is not None:
                    self._before_end()
                response = self._client.delete(f"/v1/programs/{request.program_id}")
            if response.status_code >= 400 and response.status_code != 404:
                self._warn(
                    "session %s of %s: HTTP %s",
                    request.action,
                    request.program_id,
                    response.status_code,
                )
        except Exception as exc:
            self._warn("session %s of %s failed: %s", request.action, request.program_id, exc)

    def _warn(self, message: str, *args: object) -> None:
        level = logging.DEBUG if self._warned else logging.WARNING
        self._warned = True
        _log.log(level, message, *args)
