"""Helpers behind tests/qemu/conftest.py: a QEMU process with its QMP connection."""

from __future__ import annotations

import asyncio
import re
import socket
import struct
import subprocess
import threading
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
        self._stderr_path = workdir / "qemu.stderr"
        # The monitor's socket is connected before QEMU starts, as machinedesc's
        # own is (machinedesc/qemu/process.py, QemuProcess, says why: a monitor that
        # accepts while QEMU starts sometimes greets twice, or never).
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.argv = [str(binary), *args,
                     "-chardev", f"socket,id=test-qmp,fd={theirs.fileno()}",
                     "-mon", "chardev=test-qmp,mode=control"]
        self._stderr = open(self._stderr_path, "wb")  # noqa: SIM115 (closed in kill)
        try:
            self.process = subprocess.Popen(
                self.argv, cwd=workdir, stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=self._stderr, pass_fds=(theirs.fileno(),),
            )
        except BaseException:
            ours.close()
            self._stderr.close()
            raise
        finally:
            theirs.close()
        self._qmp: QEMUMonitorProtocol | None = None
        try:
            self._qmp = self._connect(ours)
        except BaseException:
            ours.close()
            self.kill()
            raise

    @property
    def qmp(self) -> QEMUMonitorProtocol:
        """The connected QMP monitor."""
        assert self._qmp is not None
        return self._qmp

    def _connect(self, sock: socket.socket) -> QEMUMonitorProtocol:
        # Nothing to poll for: the greeting arrives once QEMU is up, or the
        # connection closes when QEMU dies first. connect() has no timeout of
        # its own: a QEMU that neither greets nor dies is killed, which closes it.
        qmp = QEMUMonitorProtocol(sock)
        qmp.settimeout(QMP_COMMAND_TIMEOUT)
        watchdog = threading.Timer(QMP_CONNECT_TIMEOUT, self.process.kill)
        watchdog.start()
        try:
            qmp.connect()
        except Exception as exc:
            self.process.poll()
            raise RuntimeError(
                f"no QMP greeting (QEMU exit status {self.process.returncode}): "
                f"{' '.join(self.argv)}\n{self.stderr_text()}") from exc
        finally:
            watchdog.cancel()
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


def flat_ranges(vm: QemuInstance) -> set[str]:
    """Lines of the system address space's flat view ('START-END (prio P, KIND): NAME'), once ready."""
    system = hmp(vm, "info mtree -f").split('AS "memory", root: system')[1].split("FlatView")[0]
    return {line.strip() for line in system.splitlines() if re.match(r"\s+[0-9a-f]{16}-", line)}
