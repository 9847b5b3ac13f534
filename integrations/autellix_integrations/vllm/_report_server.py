"""An optional HTTP side channel for service reports and held KV, for remote front ends.

vLLM's streamed responses carry no ``kv_transfer_params``, so a streaming client cannot read
the report in-band. With ``AUTELLIX_REPORT_PORT`` set, the engine process also answers
``GET /calls/<call_id>`` with the call's ``ServiceReport`` as JSON (404 until it finishes),
``GET /programs/<program_id>`` with the KV blocks held for the program, and
``POST /programs/<program_id>/end``, the front end's notice that the program ended, which
releases them (the in-process engine gets the same notice through vLLM's abort). The server
runs on a daemon thread; it reads the bounded report log, and reaches the holds only
through ``ProgramHolds``, which takes the block pool's lock.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote

if TYPE_CHECKING:
    from autellix_integrations.vllm._reports import ServiceReportLog

logger = logging.getLogger(__name__)
_PROGRAMS = "/programs/"
_END = "/end"


class ProgramHolds(Protocol):
    """The KV the engine holds for programs (thread-safe)."""

    def held_blocks(self, program_id: str) -> int: ...

    def end(self, program_id: str) -> int:
        """The program ended: release its hold; returns the blocks released."""
        ...


def serve_reports(
    reports: ServiceReportLog, host: str, port: int, *, holds: ProgramHolds | None = None
) -> ThreadingHTTPServer:
    """Start answering report look-ups (and, with ``holds``, the program routes) on
    ``host:port``; returns the running server. Without ``holds`` (retention off) a program
    holds nothing and its end releases nothing."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith(_PROGRAMS):
                program_id = unquote(self.path[len(_PROGRAMS) :])
                held = holds.held_blocks(program_id) if holds is not None else 0
                self._send(200, {"program_id": program_id, "held_blocks": held})
                return
            prefix = "/calls/"
            if not self.path.startswith(prefix):
                self._send(404, {"error": "not found"})
                return
            report = reports.get(unquote(self.path[len(prefix) :]))
            if report is None:
                self._send(404, {"error": "unknown or unfinished call"})
                return
            self._send(200, report.as_dict())

        def do_POST(self) -> None:
            if not (self.path.startswith(_PROGRAMS) and self.path.endswith(_END)):
                self._send(404, {"error": "not found"})
                return
            program_id = unquote(self.path[len(_PROGRAMS) : -len(_END)])
            released = holds.end(program_id) if holds is not None else 0
            self._send(200, {"program_id": program_id, "released_blocks": released})

        def _send(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="autellix-reports", daemon=True)
    thread.start()
    logger.info("Autellix service reports on http://%s:%d/calls/<call_id>", host, port)
    return server
