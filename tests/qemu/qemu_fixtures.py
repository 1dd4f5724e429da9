"""Helpers behind tests/qemu/conftest.py: a QEMU process with its QMP connection."""

from __future__ import annotations

import asyncio
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from qemu.qmp.legacy import QEMUMonitorProtocol

QMP_CONNECT_TIMEOUT = 20.0
QMP_COMMAND_TIMEOUT = 30.0


class QemuInstance:
    """A running QEMU process with its QMP connection and private directory."""

    def __init__(self, binary: Path, args: Sequence[str], workdir: Path) -> None:
        self.workdir = workdir
        self.socket_path = workdir / "qmp.sock"
        self._stderr_path = workdir / "qemu.stderr"
        self.argv = [str(binary), *args,
                     "-qmp", f"unix:{self.socket_path},server=on,wait=off"]
        self._stderr = open(self._stderr_path, "wb")  # noqa: SIM115 (closed in kill)
        self.process = subprocess.Popen(
            self.argv, cwd=workdir, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=self._stderr,
        )
        self._qmp: QEMUMonitorProtocol | None = None
        try:
            self._qmp = self._connect()
        except BaseException:
            self.kill()
            raise

    @property
    def qmp(self) -> QEMUMonitorProtocol:
        """The connected QMP monitor."""
        assert self._qmp is not None
        return self._qmp

    def _connect(self) -> QEMUMonitorProtocol:
        # The socket file appears at bind(), slightly before listen(): retry
        # the connection until QEMU accepts it, then hand the socket to qemu.qmp.
        deadline = time.monotonic() + QMP_CONNECT_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"QEMU exited with {self.process.returncode} before QMP was up: "
                    f"{' '.join(self.argv)}\n{self.stderr_text()}")
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(self.socket_path))
                break
            except OSError:
                sock.close()
            if time.monotonic() > deadline:
                raise RuntimeError(f"QMP socket did not come up: {' '.join(self.argv)}")
            time.sleep(0.01)
        qmp = QEMUMonitorProtocol(sock)
        qmp.settimeout(QMP_COMMAND_TIMEOUT)
        qmp.connect()
        return qmp

    def cmd(self, name: str, **args: Any) -> Any:
        """Run a QMP command; return its value or raise qemu.qmp.ExecuteError."""
        return self.qmp.cmd(name, **args)

    def stderr_text(self) -> str:
        """What QEMU wrote to stderr so far."""
        self._stderr.flush()
        return self._stderr_path.read_text(errors="replace")

    def wait_exit(self, timeout: float) -> int:
        """Wait for QEMU to exit by itself; return its exit status."""
        return self.process.wait(timeout=timeout)

    def kill(self) -> None:
        """Kill QEMU (if still running) and close the QMP connection."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        if self._qmp is not None:
            try:
                self._qmp.close()
            except Exception:  # noqa: BLE001 (the peer is gone; nothing to report)
                pass
            # qemu.qmp's legacy shim creates an event loop when none is set and
            # never closes it; a later asyncio.run() then orphans it.
            loop = self._qmp._aloop  # noqa: SLF001
            if not loop.is_closed() and not loop.is_running():
                loop.close()
                asyncio.set_event_loop(None)
            self._qmp = None
        if not self._stderr.closed:
            self._stderr.close()


Launcher = Callable[..., QemuInstance]


EM_RISCV = 243
EM_AARCH64 = 183


def tiny_elf(machine: int, entry: int, code: bytes) -> bytes:
    """A minimal little-endian ELF64 executable: one PT_LOAD segment of CODE at ENTRY."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, machine, 1, entry, 64, 0, 0,
                                 64, 56, 1, 64, 0, 0)
    offset = 64 + 56
    program_header = struct.pack("<IIQQQQQQ", 1, 5, offset, entry, entry,
                                 len(code), len(code), 4)
    return header + program_header + code


def hmp(vm: QemuInstance, command_line: str) -> str:
    """Run an HMP command through QMP (only once the machine is ready)."""
    return str(vm.cmd("human-monitor-command", **{"command-line": command_line}))
