"""One qemu.qmp session with QEMU: timeouts, QEMU-death detection, and the -v echo of every message.

Every command machinedesc sends goes through ``Session.call``: a reply that
does not come within the timeout, or a connection that breaks, becomes an
exit-5 QemuError carrying QEMU's exit status and stderr tail; QEMU's own
error replies (``ExecuteError``) pass through, for the caller to name the step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Mapping
from typing import Any, Generic, Protocol, TypeVar

from qemu.qmp import ExecuteError, QMPClient, QMPError

from ..errors import QemuError, QemuTimeoutError
from .process import QemuProcess


class Echo(Protocol):
    """Where a session shows each message it sends and each reply (apply.progress.Reporter, for -v)."""

    def sent(self, message: Mapping[str, Any]) -> None: ...

    def received(self, reply: Mapping[str, Any]) -> None: ...


EchoT = TypeVar("EchoT", bound=Echo)


class Session(Generic[EchoT]):
    """One qemu.qmp connection, with timeouts and QEMU-death detection around every command."""

    def __init__(self, client: QMPClient, timeout: float, qemu: QemuProcess | None,
                 reporter: EchoT, where: str) -> None:
        self.client = client
        self.timeout = timeout
        self.qemu = qemu
        self.reporter = reporter
        self.where = where
        self._waited = False

    async def call(self, command: str, arguments: Mapping[str, Any] | None = None,
                   timeout: float | None = None) -> Any:
        """Execute one command; ExecuteError passes through (the caller knows the step).

        Raises QemuTimeoutError or QemuError (exit 5) when QEMU does not answer
        in time or the connection breaks.
        """
        msg = QMPClient.make_execute_msg(command, dict(arguments) if arguments else None)
        self.reporter.sent(msg)
        try:
            async with asyncio.timeout(timeout or self.timeout):
                value = await self.client.execute_msg(msg)
        except ExecuteError as exc:
            self.reporter.received(dict(exc.received))
            raise
        except TimeoutError:
            raise self.lost(f"QEMU did not answer '{command}' within {timeout or self.timeout:g} s",
                            timeout=True) from None
        except (QMPError, OSError, EOFError) as exc:
            raise self.lost(f"lost the QMP connection during '{command}' ({type(exc).__name__}: {exc})") from exc
        self.reporter.received({"return": value})
        return value

    def lost(self, what: str, timeout: bool = False) -> QemuError:
        """The exit-5 error for a dead or silent QEMU, with its stderr tail."""
        cls = QemuTimeoutError if timeout else QemuError
        if self.qemu is None:
            return cls(f"machinedesc: {what}\n  ({self.where})")
        # Give a dying QEMU a moment so the status and stderr are final - once:
        # this blocks, and eight pipelined commands may all time out together.
        if not self._waited:
            self._waited = True
            self.qemu.wait(0.5)
        return cls(f"machinedesc: {what}\n  QEMU ({self.qemu.binary}, pid {self.qemu.pid}) {self.qemu.describe_exit()}",
                   self.qemu.stderr_tail())

    async def phase(self) -> str:
        """The machine phase QEMU reports (query-machine-phase)."""
        reply = await self.call("query-machine-phase")
        return str(reply["phase"]) if isinstance(reply, dict) else str(reply)


def qemu_version(client: QMPClient) -> str:
    """``QEMU 10.0.2 (package)`` from the QMP greeting."""
    greeting = client.greeting
    if greeting is None:
        return "unknown version"
    info: Any = greeting.QMP.version
    q = info["qemu"]
    text = f"QEMU {q['major']}.{q['minor']}.{q['micro']}"
    if info.get("package"):
        text += f" ({str(info['package']).strip()})"
    return text


def silence_qmp_logging() -> None:
    # qemu.qmp logs a dying peer at ERROR level; we report it ourselves, with context.
    logger = logging.getLogger("qemu.qmp")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


async def connect(client: QMPClient, path: str | socket.socket, timeout: float, qemu: QemuProcess | None) -> None:
    """Connect ``client`` to QMP: a socket path, or a connected socket (``QemuProcess.qmp_socket``).

    Raises QemuError / QemuTimeoutError (exit 5) if that fails.
    """
    where = path if isinstance(path, str) else "QEMU's monitor"
    try:
        async with asyncio.timeout(timeout):
            await client.connect(path)
    except TimeoutError:
        raise QemuTimeoutError(f"machinedesc: no QMP greeting from {where} within {timeout:g} s",
                               stderr_tail(qemu)) from None
    except (QMPError, OSError) as exc:
        if qemu is not None:
            qemu.wait(0.5)
            if qemu.poll() is None:
                # Still running: it answered, but not with a QMP greeting.
                raise QemuError(f"machinedesc: {qemu.binary} (pid {qemu.pid}) did not greet like a QEMU "
                                f"QMP server: {_describe(exc)}", stderr_tail(qemu)) from exc
            raise QemuError(f"machinedesc: QEMU {qemu.describe_exit()} before QMP was up "
                            f"({qemu.binary})", stderr_tail(qemu)) from exc
        raise QemuError(f"machinedesc: cannot connect to QMP socket {where}: {_describe(exc)}") from exc


def _describe(exc: BaseException) -> str:
    """An exception and the chain of causes qemu.qmp wraps it in, on one line, without control characters."""
    parts: list[str] = []
    cur: BaseException | None = exc
    while cur is not None and len(parts) < 4:
        text = str(cur) or type(cur).__name__
        if not any(text in p for p in parts):
            parts.append(text)
        cur = cur.__cause__ or cur.__context__
    line = ": ".join(" ".join(p.split()) for p in parts)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)[:300]


def stderr_tail(qemu: QemuProcess | None) -> str:
    """QEMU's last stderr lines ('' if none, or no QEMU of ours); QemuError shows them."""
    return qemu.stderr_tail() if qemu is not None else ""


async def disconnect(client: QMPClient) -> None:
    """Disconnect, ignoring errors (QEMU may be gone), within 2 s."""
    # Errors only: a cancellation (Ctrl-C) arriving here must still reach drive().
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2.0):
            await client.disconnect()
