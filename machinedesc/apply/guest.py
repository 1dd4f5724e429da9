"""Start QEMU for a job and run its guest: console redirection, the CPUs, detach, waiting for exit.

``launch`` starts QEMU (``-preconfig``, ``-S``, the console where --serial
says: ``spawn``), or takes over the one apply started early; after a
verified build ``run_guest`` starts the CPUs (unless --paused), then
detaches (printing where everything is) or relays the console until QEMU
exits.  ``Stop`` turns a signal or a lost console into the cancellation of
drive() and the error it ends with.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, BinaryIO, TextIO

from qemu.qmp import ExecuteError

from ..errors import ConsoleError, Interrupted, MachinedescError, QemuError, QemuTimeoutError
from ..qemu.phases import EXIT_PRECONFIG
from ..qemu.process import QemuProcess
from ..qemu.session import Session, disconnect, stderr_tail
from .job import Job, Options
from .progress import Reporter
from .send import refused
from .spawn import Started, spawn
from .terminal import keystrokes_to, typing_fd


class Stop:
    """What ends drive() early: a signal (SIGINT, SIGTERM, SIGHUP) or a console write that failed.

    The first cause cancels the main task; once cleanup runs (``cleaning``),
    causes are only noted, so that cleanup itself is never cut short.
    """

    def __init__(self, task: asyncio.Task[Any], loop: asyncio.AbstractEventLoop) -> None:
        self.task = task
        self.loop = loop
        self.signal: int | None = None
        self.console: OSError | None = None
        self.cleaning = False

    def on_signal(self, signum: int) -> None:
        if self.signal is None:
            self.signal = signum
            if not self.cleaning:
                self.task.cancel()

    def on_console_error(self, exc: OSError) -> None:
        """Called from the console relay thread: stop at once, the guest's output is being lost."""
        with contextlib.suppress(RuntimeError):  # the loop is already closed
            self.loop.call_soon_threadsafe(self._console_failed, exc)

    def _console_failed(self, exc: OSError) -> None:
        if self.console is None and self.signal is None:
            self.console = exc
            if not self.cleaning:
                self.task.cancel()

    def error(self, opts: Options) -> MachinedescError | None:
        """The error for a cancellation this caused (and the task uncancelled), or None."""
        if self.signal is not None:
            self.task.uncancel()
            return Interrupted(self.signal)
        if self.console is not None:
            self.task.uncancel()
            return console_lost(self.console, opts)
        return None


def console_lost(exc: OSError, opts: Options) -> ConsoleError:
    where = opts.serial or "standard output"
    return ConsoleError(f"machinedesc: cannot write the guest console to {where}: {exc.strerror or exc}; "
                        "QEMU was stopped, console output was lost")


def launch(job: Job, opts: Options, out: BinaryIO, stop: Stop, started: Started | None = None) -> QemuProcess:
    """QEMU for ``job``: the one ``started`` holds (apply starts it before importing the engine), else a new
    one (``spawn``); its console failures reported to ``stop``."""
    qemu = started.take() if started is not None else None
    if qemu is None:
        qemu = spawn(job, opts, out)
    try:
        qemu.on_console_error = stop.on_console_error
        if qemu.console_error is not None:
            stop.on_console_error(qemu.console_error)  # it failed before there was anyone to tell
        if opts.on_first_output is not None:
            watch_first_output(qemu, opts.on_first_output)
    except BaseException:
        qemu.cleanup()
        raise
    return qemu


def watch_first_output(qemu: QemuProcess, callback: Callable[[float], None]) -> None:
    """Call ``callback`` (from a thread) with the time of the console's first byte, once it comes (benchmarks)."""
    def poll() -> None:
        while qemu.poll() is None and qemu.first_output is None:
            time.sleep(0.0005)
        if qemu.first_output is None:
            qemu.finish_console()  # QEMU exited: what it wrote may still be in the relay
        if qemu.first_output is not None:
            callback(qemu.first_output)
    threading.Thread(target=poll, daemon=True).start()


async def wait_console_client(session: Session[Reporter], ids: Sequence[str], path: str, err: TextIO) -> None:
    """Hold the CPUs until a client is connected to the console socket (QEMU drops output before)."""
    err.write(f"machinedesc: waiting for a client on the console socket {path} "
              f"(e.g. socat - UNIX-CONNECT:{path}); Ctrl-C stops\n")
    err.flush()
    while True:
        chardevs = await session.call("query-chardev")
        waiting = [c for c in chardevs if c.get("label") in ids
                   and str(c.get("filename", "")).startswith("disconnected:")]
        if not waiting:
            return
        await asyncio.sleep(0.05)


def print_detached(qemu: QemuProcess, job: Job, opts: Options, out: BinaryIO) -> None:
    lines = [f"pid: {qemu.pid}", f"qmp: {qemu.qmp_path}"]
    serial = opts.serial or "log"
    if serial == "log":
        lines += [f"console {cid}: {qemu.workdir / (cid + '.log')}" for cid in job.console_ids]
    lines.append(f"stderr: {qemu.stderr_path}")
    lines.append(f"directory: {qemu.workdir} (remove it after QEMU exits)")
    out.write(("\n".join(lines) + "\n").encode())
    out.flush()


#: How often a running guest's QEMU is looked at for being stopped (seconds).
STOPPED_POLL = 0.25


async def wait_exit(qemu: QemuProcess, timeout: float | None = None) -> int:
    """Wait (without blocking the loop or leaving a thread behind) until QEMU exits.

    With ``timeout``, a QEMU stopped (SIGSTOP, state T) that long is given
    up: QemuTimeoutError (exit 5), as a QEMU that stops answering a command is.
    """
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(qemu.pid)
    except (AttributeError, OSError):
        fd = None
    done = loop.create_future()

    def ready() -> None:
        if not done.done():
            done.set_result(None)
    try:
        if fd is not None:
            loop.add_reader(fd, ready)
        stopped_since: float | None = None
        while qemu.poll() is None:
            await asyncio.wait({done}, timeout=STOPPED_POLL if fd is not None else 0.05)
            if timeout is None or qemu.poll() is not None:
                continue
            if not qemu.stopped():
                stopped_since = None
            elif stopped_since is None:
                stopped_since = loop.time()
            elif loop.time() - stopped_since >= timeout:
                raise QemuTimeoutError(f"machinedesc: QEMU (pid {qemu.pid}) has been stopped for {timeout:g} s "
                                       "while the guest was running (step: run the guest, after 'cont'); "
                                       f"giving up\n  QEMU {qemu.describe_exit()}", stderr_tail(qemu))
    finally:
        if fd is not None:
            loop.remove_reader(fd)
            os.close(fd)
        if not done.done():
            done.cancel()
    rc = qemu.wait()
    return rc if rc is not None else 0


async def run_guest(session: Session[Reporter], qemu: QemuProcess, job: Job, opts: Options, stop: Stop,
                     err: TextIO, out: BinaryIO) -> None:
    """After a verified build: start the CPUs (unless paused), then detach or wait for QEMU to exit."""
    serial = opts.serial or ""
    if serial.startswith("socket:") and not (opts.paused or opts.detach) and job.console_ids:
        await wait_console_client(session, job.console_ids, serial[len("socket:"):], err)
    if not opts.paused:
        try:
            await session.call("cont")
        except ExecuteError as exc:
            raise refused(f"machinedesc: cannot start the CPUs of {job.title} (does it end with "
                           f"{EXIT_PRECONFIG}?): QEMU error {exc.error_class}: "
                           f"{exc.error.error.desc}", exc) from None
    await disconnect(session.client)
    if stop.signal is not None:
        # The signal came while qemu.qmp was tearing down and got absorbed there.
        raise Interrupted(stop.signal)
    if opts.detach:
        qemu.detach()
        print_detached(qemu, job, opts, out)
        return
    if opts.paused:
        err.write(f"machinedesc: CPUs are paused; QMP socket {qemu.qmp_path} "
                  "(connect, e.g. qmp-shell, and send 'cont'); Ctrl-C stops QEMU\n")
        err.flush()
    with keystrokes_to(qemu, typing_fd(job, opts)):
        rc = await wait_exit(qemu, opts.timeout)
    qemu.finish_console()
    if qemu.console_error is not None:
        raise console_lost(qemu.console_error, opts)
    if rc != 0:
        # With --paused the CPUs run only if a QMP client sent 'cont'.
        when = "after the build, with the CPUs paused (--paused)" if opts.paused else "while the guest was running"
        raise QemuError(f"machinedesc: QEMU {qemu.describe_exit()} {when}", stderr_tail(qemu))
