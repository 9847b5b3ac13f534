"""The README's main job: start ``autellix serve`` on its default engine and run the examples.

    python -m examples.demo [--engine local_vllm|sim] [--port 0] [--once]

Starts the service as a child process (by default one in-process vLLM CPU engine serving the
tiny local model), waits until ``/healthz`` answers, runs every example agent program in
replay mode against it (``examples.run_all``), prints the service's view of the programs and
its Prometheus counters, then prints the tracing UI's URL and keeps the service up until
Ctrl-C, so the programs' DAGs and timelines can be looked at in a browser. ``--once`` (or
``AUTELLIX_DEMO_ONCE=1``) stops the service right after the examples instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence

import httpx

from examples import run_all


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_service(engine: str | None, port: int, timeout: float) -> Iterator[str]:
    """Run ``autellix serve`` until the block ends; yield its base URL."""
    command = [sys.executable, "-m", "autellix_backend", "serve", "--port", str(port)]
    command += ["--log-level", "warning"]
    if engine:
        command += ["--engine", engine]
    print("$", " ".join(command), flush=True)
    process = subprocess.Popen(command, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise SystemExit(f"autellix serve exited with code {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit(f"autellix serve was not healthy after {timeout:.0f} s")
            time.sleep(1)
        print(f"service ready at {base_url}", flush=True)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def _print_service_view(base_url: str) -> None:
    programs = httpx.get(f"{base_url}/v1/programs", timeout=10).json()
    rows = programs.get("data", programs) if isinstance(programs, dict) else programs
    print(f"\nprocess table: {len(rows)} programs")
    metrics = httpx.get(f"{base_url}/metrics", timeout=10).text
    wanted = ("autellix_calls_total", "autellix_preemptions_total", "autellix_programs")
    for line in metrics.splitlines():
        if line.startswith(wanted):
            print(" ", line)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default=None, help="engine kind (default: local_vllm)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--startup-timeout", type=float, default=300.0)
    parser.add_argument(
        "--once",
        action="store_true",
        default=os.environ.get("AUTELLIX_DEMO_ONCE", "") not in ("", "0"),
        help="stop the service after the examples (default: serve the UI until Ctrl-C)",
    )
    args = parser.parse_args(argv)
    port = args.port or _free_port()
    # SIGTERM ends the demo like Ctrl-C does: the service is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with running_service(args.engine, port, args.startup_timeout) as base_url:
        code = run_all.main(["--base-url", base_url])
        _print_service_view(base_url)
        if not args.once:
            _serve_until_interrupted(base_url)
    return code


def _serve_until_interrupted(base_url: str) -> None:
    print(f"\ntracing UI: {base_url}/ui  (the service keeps running; Ctrl-C stops it)", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
