"""The HTTP protocol ``autellix serve`` runs (uvicorn's, writing a response's head with its
body): on one keep-alive connection, answers come whole and in order, pipelined or not, and a
stream's head and first events reach the client while the call is still generating."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from autellix_protocol.headers import HEADER_PROGRAM_ID
from tests.server.conftest import LiveServer, sim_config


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    server = LiveServer(sim_config(time_scale=1.0)).start()
    yield server
    server.stop()


def _post(path: str, body: dict[str, object], headers: dict[str, str] | None = None) -> bytes:
    data = json.dumps(body).encode()
    lines = [f"POST {path} HTTP/1.1", "Host: test", "Content-Type: application/json"]
    lines += [f"Content-Length: {len(data)}"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def _chat(program: str, **fields: object) -> bytes:
    body = {"model": "sim", "messages": [{"role": "user", "content": program}], **fields}
    return _post("/v1/chat/completions", body, {HEADER_PROGRAM_ID: program})


class _Reader:
    """Reads HTTP/1.1 responses (Content-Length bodies) off a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = b""

    def until(self, marker: bytes) -> bytes:
        while marker not in self.data:
            more = self.sock.recv(65536)
            if not more:
                raise AssertionError(f"connection closed before {marker!r}: {self.data!r}")
            self.data += more
        head, _, self.data = self.data.partition(marker)
        return head

    def response(self) -> tuple[int, dict[str, str], bytes]:
        lines = self.until(b"\r\n\r\n").decode().split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers["content-length"])
        while len(self.data) < length:
            more = self.sock.recv(65536)
            assert more, "connection closed inside a body"
            self.data += more
        body, self.data = self.data[:length], self.data[length:]
        return status, headers, body


def _connect(live: LiveServer) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", live.port), timeout=60)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def test_calls_on_one_connection_answer_whole_and_in_order(live: LiveServer) -> None:
    with _connect(live) as sock:
        reader = _Reader(sock)
        for program in ("one-a", "one-b"):  # keep-alive, one after the other
            sock.sendall(_chat(program, max_tokens=2))
            status, headers, body = reader.response()
            assert status == 200
            assert headers[HEADER_PROGRAM_ID.lower()] == program
            assert json.loads(body)["object"] == "chat.completion"
        # Pipelined: three requests in one write; a slow call first, so answers queue up.
        health = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"
        sock.sendall(_chat("pipe-a", max_tokens=40) + health + _chat("pipe-b", max_tokens=1))
        answers = [reader.response() for _ in range(3)]
    assert [status for status, _, _ in answers] == [200, 200, 200]
    assert answers[0][1][HEADER_PROGRAM_ID.lower()] == "pipe-a"
    assert json.loads(answers[0][2])["usage"]["completion_tokens"] == 40
    assert json.loads(answers[1][2])["status"] == "ok"
    assert answers[2][1][HEADER_PROGRAM_ID.lower()] == "pipe-b"


def test_stream_head_and_first_event_come_while_the_call_generates(live: LiveServer) -> None:
    # 4,000 tokens at the A100 cost model take tens of seconds: the call is far from done.
    call = _chat("stream", max_tokens=4000, stream=True, ignore_eos=True)
    with _connect(live) as sock:
        sock.sendall(call)
        reader = _Reader(sock)
        head = reader.until(b"\r\n\r\n").decode()
        assert head.startswith("HTTP/1.1 200")
        assert "text/event-stream" in head
        first = reader.until(b"\n\n")
    assert b"data: {" in first
    assert b"[DONE]" not in first + reader.data


def test_a_head_without_body_is_written_when_its_response_completes(live: LiveServer) -> None:
    with _connect(live) as sock:
        reader = _Reader(sock)
        sock.sendall(b"HEAD /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        head = reader.until(b"\r\n\r\n").decode()  # no body follows a HEAD answer
        assert head.startswith("HTTP/1.1 405")  # healthz is GET only; the head still comes
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        status, _, body = reader.response()
    assert status == 200
    assert json.loads(body)["status"] == "ok"
