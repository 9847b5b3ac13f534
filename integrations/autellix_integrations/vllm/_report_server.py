"""An optional HTTP side channel for service reports, for clients that stream.

vLLM's streamed responses carry no ``kv_transfer_params``, so a streaming client cannot read
the report in-band. With ``AUTELLIX_REPORT_PORT`` set, the engine process also answers
``GET /calls/<call_id>`` with the call's ``ServiceReport`` as JSON (404 until it finishes).
The server runs on a daemon thread and only reads the bounded report log.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import unquote

if TYPE_CHECKING:
    from autellix_integrations.vllm._reports import ServiceReportLog

logger = logging.getLogger(__name__)


def serve_reports(reports: ServiceReportLog, host: str, port: int) -> ThreadingHTTPServer:
    """Start answering report look-ups on ``host:port``; returns the running server."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            prefix = "/calls/"
            if not self.path.startswith(prefix):
                self._send(404, {"error": "not found"})
                return
            report = reports.get(unquote(self.path[len(prefix) :]))
            if report is None:
                self._send(404, {"error": "unknown or unfinished call"})
                return
            self._send(200, report.as_dict())

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
