"""One qemu.qmp session with QEMU: timeouts, QEMU-death detection, progress and -v echo.

Every command machinedesc sends goes through ``Session.call``: a reply that
does not come within the timeout, or a connection that breaks, becomes an
exit-5 QemuError carrying QEMU's exit status and stderr tail; QEMU's own
error replies (``ExecuteError``) pass through, for the caller to name the step.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import socket
from collections.abc import Mapping
from typing import Any, TextIO

from qemu.qmp import ExecuteError, QMPClient, QMPError

from .process import QemuError, QemuProcess, QemuTimeoutError

_ECHO_LIMIT = 400


class Reporter:
    """Progress on a terminal (one rewritten line), quiet in pipes; ``-v`` echoes commands and replies."""

    def __init__(self, stream: TextIO, verbose: bool) -> None:
        self.stream = stream
        self.verbose = verbose
        self.tty = stream.isatty() and not verbose
        self._shown = False

    def progress(self, n: int, total: int, phase: str | None, text: str) -> None:
        """``[phase] step n/N: command`` on one rewritten terminal line."""
        if self.tty:
            width = shutil.get_terminal_size((80, 24)).columns
            line = f"[{phase or '-'}] step {n}/{total}: {text}"
            self.stream.write("\r\x1b[K" + line[: max(10, width - 1)])
            self.stream.flush()
            self._shown = True

    def sent(self, message: Mapping[str, Any]) -> None:
        if self.verbose:
            self._echo("-> ", message)

    def received(self, reply: Mapping[str, Any]) -> None:
        if self.verbose:
            self._echo("<- ", reply)

    def _echo(self, arrow: str, message: Mapping[str, Any]) -> None:
        text = json.dumps(dict(message))
        if len(text) > _ECHO_LIMIT:
            # query-qmp-schema's reply alone is hundreds of kilobytes.
            text = f"{text[:_ECHO_LIMIT]}... ({len(text)} bytes)"
        self.stream.write(arrow + text + "\n")
        self.stream.flush()

    def clear(self) -> None:
        """Erase the progress line, if one is shown."""
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False

    def say(self, text: str) -> None:
        """A status line, only on a terminal (or with -v)."""
        if self.tty or self.verbose:
            self.clear()
            self.stream.write(text + "\n")
            self.stream.flush()


class Session:
    """One qemu.qmp connection, with timeouts and QEMU-death detection around every command."""

    def __init__(self, client: QMPClient, timeout: float, qemu: QemuProcess | None,
                 reporter: Reporter, where: str) -> None:
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
        lines = [f"machinedesc: {what}"]
        if self.qemu is not None:
            # Give a dying QEMU a moment so the status and stderr are final - once:
            # this blocks, and eight pipelined commands may all time out together.
            if not self._waited:
                self._waited = True
                self.qemu.wait(0.5)
            lines.append(f"  QEMU ({self.qemu.binary}, pid {self.qemu.pid}) {self.qemu.describe_exit()}")
            tail = self.qemu.stderr_tail()
            if tail:
                lines.append("  QEMU stderr (last lines):")
                lines.extend("    " + line for line in tail.splitlines())
        else:
            lines.append(f"  ({self.where})")
        cls = QemuTimeoutError if timeout else QemuError
        return cls("\n".join(lines))

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
        raise QemuTimeoutError(f"machinedesc: no QMP greeting from {where} within {timeout:g} s"
                               + stderr_tail(qemu)) from None
    except (QMPError, OSError) as exc:
        if qemu is not None:
            qemu.wait(0.5)
            if qemu.poll() is None:
                # Still running: it answered, but not with a QMP greeting.
                raise QemuError(f"machinedesc: {qemu.binary} (pid {qemu.pid}) did not greet like a QEMU "
                                f"QMP server: {_describe(exc)}" + stderr_tail(qemu)) from exc
            raise QemuError(f"machinedesc: QEMU {qemu.describe_exit()} before QMP was up "
                            f"({qemu.binary})" + stderr_tail(qemu)) from exc
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
    """QEMU's last stderr lines, indented for an error message ('' if none)."""
    if qemu is None:
        return ""
    tail = qemu.stderr_tail()
    return ("\n  QEMU stderr (last lines):\n" + "\n".join("    " + line for line in tail.splitlines())) if tail else ""


async def disconnect(client: QMPClient) -> None:
    """Disconnect, ignoring errors (QEMU may be gone), within 2 s."""
    # Errors only: a cancellation (Ctrl-C) arriving here must still reach drive().
    with contextlib.suppress(Exception):
        async with asyncio.timeout(2.0):
            await client.disconnect()
