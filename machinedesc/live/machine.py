"""A machine built by apply's engine and then kept for the caller: ``AsyncMachine`` and its sync twin ``Machine``.

The build is apply's own (``apply.engine``: the capability probe, the steps
pipelined, the verification; ``apply.job.plan_job`` for the job). What
differs is the end: instead of relaying the console until QEMU exits, the
machine is handed to the caller with its ``console`` (``live.console``), its
QMP session (``qmp``: the same connection the build used) and its exit
status (``wait``). Leaving the ``with`` block - normally, by an exception,
by Ctrl-C - does what apply's ``finally`` does: QEMU is killed, the QMP
connection closed, the private directory removed. If the Python process
itself is killed, QEMU dies with it (``PR_SET_PDEATHSIG``) and the next
machinedesc removes the directory (``qemu.workdir.reap_stale``).
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, cast

from qemu.qmp import ExecuteError, QMPClient

from ..apply.engine import _build, _connect_started
from ..apply.guest import wait_exit
from ..apply.job import Job, Options, check_detaching
from ..apply.progress import Reporter
from ..apply.send import refused
from ..errors import QemuTimeoutError
from ..qemu.binary import find_binary
from ..qemu.process import QemuProcess
from ..qemu.session import Session, disconnect, silence_qmp_logging
from .console import Console, ConsoleSink


class AsyncMachine:
    """A machine in a real QEMU, built from ``job``; ``async with`` builds it and always cleans up.

    ``options``: ``qemu`` (binary), ``timeout`` (seconds per QMP reply and
    for QEMU's start), ``paused`` (CPUs left stopped after the build; send
    ``cont``), ``extra_args`` (more QEMU options), ``verbose`` (echo QMP on
    stderr), ``timings`` (seconds per stage, as apply records them).
    Raises what ``apply`` raises, as exceptions: CapabilityError, StepError,
    QemuError, QemuNotFoundError, UsageError (``machinedesc.errors``).
    """

    def __init__(self, job: Job, options: Options | None = None) -> None:
        self.job = job
        self.options = options if options is not None else Options()
        self.qemu: QemuProcess | None = None
        self._client: QMPClient | None = None
        self._session: Session[Reporter] | None = None
        self._sink = ConsoleSink()
        self._console: Console | None = None
        self._closed = False
        self._final_stderr = ""

    async def __aenter__(self) -> AsyncMachine:
        await self.open()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Start QEMU, build and verify the machine, start the CPUs (unless ``paused``)."""
        opts = self.options
        opts.validate()
        check_detaching([*self.job.qemu_args, *opts.extra_args])
        silence_qmp_logging()
        t_begin = time.monotonic()
        binary = Path(self.job.binary) if self.job.binary else find_binary(self.job.system or "", opts.qemu)
        # As apply starts it: in -preconfig, CPUs stopped until verified.
        args = [*self.job.qemu_args, *(a for a in ("-preconfig", "-S") if a not in self.job.qemu_args),
                *opts.extra_args]
        try:
            self.qemu = QemuProcess(binary, args, console=cast(BinaryIO, self._sink), console_input=True)
            qemu = self.qemu
            self._console = Console(self._sink, self._alive, qemu.feed, qemu.stderr_tail, opts.timeout)
            self._client = QMPClient(self.job.title)
            await _connect_started(self._client, qemu, self.job, opts)
            reporter = Reporter(opts.stderr if opts.stderr is not None else io.StringIO(), opts.verbose)
            self._session = Session(self._client, opts.timeout, qemu, reporter, str(qemu.binary))
            await _build(self._session, self.job, opts, t_begin)
            if not opts.paused:
                await self.qmp("cont")
        except BaseException:
            await self.aclose()
            raise

    def _alive(self) -> bool:
        """False once QEMU has exited and everything it printed has been relayed."""
        if self.qemu is None or self.qemu.poll() is None:
            return self.qemu is not None
        self.qemu.finish_console(1.0)
        return False

    @property
    def console(self) -> Console:
        """The guest console (``expect``, ``write``); see ``live.console.Console``."""
        if self._console is None:
            raise RuntimeError("the machine is not started (use it in a with block)")
        return self._console

    @property
    def session(self) -> Session[Reporter]:
        if self._session is None:
            raise RuntimeError("the machine is not started (use it in a with block)")
        return self._session

    async def qmp(self, command: str, arguments: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """Run one QMP command on the build's connection; its ``return`` value.

        A refused command raises StepError (``.error_class``, ``.sent``,
        ``.received``); a QEMU that died or stopped answering, QemuError.
        """
        args = {**(arguments or {}), **kwargs}
        try:
            return await self.session.call(command, args or None)
        except ExecuteError as exc:
            raise refused(f"machinedesc: QEMU refused {dict(exc.sent)}: {exc.error_class}: "
                          f"{exc.error.error.desc}", exc) from None

    async def wait(self, timeout: float | None = None) -> int:
        """Wait until QEMU exits (the guest powered off); its exit status.

        Raises QemuTimeoutError (with QEMU's stderr tail) if it still runs after ``timeout`` s.
        """
        qemu = self._started()
        try:
            async with asyncio.timeout(timeout):
                rc = await wait_exit(qemu)
        except TimeoutError:
            why = ("QEMU is stopped (SIGSTOP or a debugger)" if qemu.stopped()
                   else "QEMU still running")
            raise QemuTimeoutError(f"machinedesc: {why} after {timeout:g} s "
                                   f"(the guest did not power off)", qemu.stderr_tail()) from None
        qemu.finish_console()
        return rc

    @property
    def first_output(self) -> float | None:
        """``time.monotonic()`` when the console's first byte arrived (None before; for benchmarks)."""
        return self.qemu.first_output if self.qemu is not None else None

    @property
    def exit_status(self) -> int | None:
        """QEMU's exit status once it exited (negative: killed by that signal), else None."""
        return self.qemu.poll() if self.qemu is not None else None

    def _started(self) -> QemuProcess:
        if self.qemu is None:
            raise RuntimeError("the machine is not started (use it in a with block)")
        return self.qemu

    def stderr_tail(self, lines: int = 15) -> str:
        """QEMU's last stderr lines ('' before the start; after close, as they were when QEMU was stopped)."""
        if self._closed:
            return "\n".join(self._final_stderr.splitlines()[-lines:])
        return self.qemu.stderr_tail(lines) if self.qemu is not None else ""

    def console_tail(self, lines: int = 20) -> str:
        """The console's last ``lines`` lines (also after close, and after a failed build)."""
        text = self._sink.all_bytes().decode("utf-8", errors="replace").rstrip()
        return "\n".join(text.splitlines()[-lines:])

    @property
    def workdir(self) -> Path:
        """QEMU's private directory (QMP socket for other clients, stderr); removed on close."""
        return self._started().workdir

    async def aclose(self) -> None:
        """Kill QEMU, close the QMP connection, remove the directory. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.qemu is not None:
                # Kept for failure reports: cleanup removes the file.
                self._final_stderr = self.qemu.stderr_tail(200)
                self.qemu.cleanup()
        finally:
            self._sink.close()
            client, self._client = self._client, None
            if client is not None:
                await disconnect(client)


class Machine:
    """The synchronous ``AsyncMachine``: ``with Machine(job) as m:`` (its own private event loop).

    Not for use inside a running asyncio loop: there use ``AsyncMachine``.
    """

    def __init__(self, job: Job, options: Options | None = None) -> None:
        self._async = AsyncMachine(job, options)
        self._loop: asyncio.AbstractEventLoop | None = None

    def __enter__(self) -> Machine:
        self.open()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _run(self, coro: Any) -> Any:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coro)

    def open(self) -> None:
        """Start QEMU, build, verify, start the CPUs; on failure nothing is left behind."""
        try:
            self._run(self._async.open())
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Kill QEMU, remove its directory, close the loop. Idempotent."""
        try:
            if self._loop is not None and not self._loop.is_closed():
                self._run(self._async.aclose())
        finally:
            if self._async.qemu is not None:  # idempotent; covers a loop that could not run
                self._async.qemu.cleanup()
            if self._loop is not None and not self._loop.is_closed():
                self._loop.close()

    @property
    def job(self) -> Job:
        return self._async.job

    @property
    def console(self) -> Console:
        """The guest console: ``expect(pattern, timeout)``, ``write(text)``, ``text``, ``tail()``."""
        return self._async.console

    def qmp(self, command: str, arguments: Mapping[str, Any] | None = None, **kwargs: Any) -> Any:
        """Run one QMP command on the build's connection; see ``AsyncMachine.qmp``."""
        return self._run(self._async.qmp(command, arguments, **kwargs))

    def wait(self, timeout: float | None = None) -> int:
        """Wait until QEMU exits; its exit status (see ``AsyncMachine.wait``)."""
        return int(self._run(self._async.wait(timeout)))

    @property
    def exit_status(self) -> int | None:
        """QEMU's exit status once it exited (negative: killed by that signal), else None."""
        return self._async.exit_status

    @property
    def first_output(self) -> float | None:
        """``time.monotonic()`` when the console's first byte arrived (None before; for benchmarks)."""
        return self._async.first_output

    def stderr_tail(self, lines: int = 15) -> str:
        """QEMU's last stderr lines (see ``AsyncMachine.stderr_tail``)."""
        return self._async.stderr_tail(lines)

    def console_tail(self, lines: int = 20) -> str:
        """The console's last lines, also after close or a failed build."""
        return self._async.console_tail(lines)

    @property
    def workdir(self) -> Path:
        return self._async.workdir

    @property
    def timings(self) -> Mapping[str, float]:
        return self._async.options.timings or {}


__all__ = ["AsyncMachine", "Machine"]
