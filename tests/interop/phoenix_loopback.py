"""Run ``phoenix serve`` with every listener on 127.0.0.1, for the interop tests.

Phoenix binds its HTTP server to ``PHOENIX_HOST`` but its OTLP/gRPC collector to ``[::]``
(every interface) with no setting to change that; this wrapper rewrites the gRPC address to
loopback before Phoenix starts. Runs in Phoenix's own environment: imports Phoenix and the
standard library only.

    PHOENIX_PORT=6006 PHOENIX_GRPC_PORT=4317 python phoenix_loopback.py
"""

from __future__ import annotations

import os
import sys
from typing import Any

import grpc.aio

LOOPBACK = "127.0.0.1"


def _loopback_only() -> None:
    """Make ``grpc.aio.server(...)`` servers listen on ``LOOPBACK`` whatever address they ask."""
    make_server = grpc.aio.server

    def server(*args: Any, **kwargs: Any) -> Any:
        made = make_server(*args, **kwargs)
        add_insecure_port = made.add_insecure_port
        add_secure_port = made.add_secure_port

        def local(address: str) -> str:
            return f"{LOOPBACK}:{address.rpartition(':')[2]}"

        made.add_insecure_port = lambda address: add_insecure_port(local(address))
        made.add_secure_port = lambda address, creds: add_secure_port(local(address), creds)
        return made

    grpc.aio.server = server


def main() -> None:
    os.environ["PHOENIX_HOST"] = LOOPBACK
    os.environ.setdefault("PHOENIX_TELEMETRY_ENABLED", "false")
    _loopback_only()
    from phoenix.server.main import main as phoenix_main

    sys.argv = ["phoenix", "serve"]
    phoenix_main()


if __name__ == "__main__":
    main()
