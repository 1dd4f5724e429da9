"""The QMP monitor reads its input in chunks (patch 45) and still parses one request at a time.

Requests are written to the monitor's socket many at once, in one write, over a raw socket (no QMP
library in between): every request must get its reply, in order, with out-of-band commands off
(the monitor suspends after each request) and on (it suspends when its queue of 8 is full), and a
request split across writes must still be parsed.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


class RawMonitor:
    """A QEMU with its QMP monitor on one end of a socket pair; this test holds the other end."""

    def __init__(self, binary: Path, workdir: Path) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock = ours
        self.sock.settimeout(30)
        self.stderr = open(workdir / "qemu.stderr", "wb")  # noqa: SIM115 (closed in close)
        self.process = subprocess.Popen(
            [str(binary), "-M", "none", "-nodefaults", "-display", "none",
             "-chardev", f"socket,id=qmp,fd={theirs.fileno()}", "-mon", "chardev=qmp,mode=control"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr, pass_fds=(theirs.fileno(),))
        theirs.close()
        self.buffer = b""
        self.greeting = self.read()

    def read(self) -> dict[str, Any]:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"QEMU closed the monitor (status {self.process.poll()})")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        reply: dict[str, Any] = json.loads(line)
        return reply

    def replies(self, count: int) -> list[dict[str, Any]]:
        """The next ``count`` replies, events left out."""
        out: list[dict[str, Any]] = []
        while len(out) < count:
            message = self.read()
            if "event" not in message:
                out.append(message)
        return out

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)
        self.sock.close()
        self.stderr.close()


@pytest.fixture
def monitor(qemu_binary: Any, tmp_path: Path) -> Iterator[RawMonitor]:
    mon = RawMonitor(qemu_binary("riscv64"), tmp_path)
    try:
        yield mon
    finally:
        mon.close()


def requests(count: int, key: str = "execute") -> bytes:
    return b"".join(json.dumps({key: "query-status", "id": k}).encode() for k in range(count))


def test_many_requests_in_one_write_are_answered_in_order(monitor: RawMonitor) -> None:
    assert "oob" in monitor.greeting["QMP"]["capabilities"]
    monitor.sock.sendall(b'{"execute": "qmp_capabilities"}')
    assert monitor.replies(1) == [{"return": {}}]
    monitor.sock.sendall(requests(200))  # about 8 KiB: more than one chunk, 200 requests in each read
    replies = monitor.replies(200)
    assert [r["id"] for r in replies] == list(range(200))
    assert all(r["return"]["status"] == "running" for r in replies)


def test_with_out_of_band_on_a_full_queue_leaves_the_rest_for_later(monitor: RawMonitor) -> None:
    monitor.sock.sendall(b'{"execute": "qmp_capabilities", "arguments": {"enable": ["oob"]}}')
    assert monitor.replies(1) == [{"return": {}}]
    # 50 requests: the monitor suspends each time its queue of 8 fills, in the middle of a chunk.
    monitor.sock.sendall(requests(50))
    assert [r["id"] for r in monitor.replies(50)] == list(range(50))
    assert monitor.process.poll() is None


def test_a_request_split_across_writes_is_parsed_whole(monitor: RawMonitor) -> None:
    monitor.sock.sendall(b'{"execute": "qmp_capabilities"}{"execute": "query-st')
    assert monitor.replies(1) == [{"return": {}}]
    monitor.sock.sendall(b'atus", "id": "late"}' + requests(3))
    replies = monitor.replies(4)
    assert [r["id"] for r in replies] == ["late", 0, 1, 2]
