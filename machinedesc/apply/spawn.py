"""Start QEMU for a job, possibly ahead of the engine: the command line, console redirection, the hand-over.

``spawn`` finds the binary and starts QEMU with the job's arguments plus
``-preconfig -S`` and the console where --serial says. ``start_early``
does it before the QMP client is even imported: ``apply`` knows QEMU's
command line as soon as it has the plan, and QEMU's own start (about as long
as ``-M virt``'s) then overlaps the import of asyncio, qemu.qmp and the
engine. This module therefore imports neither; ``drive`` takes the process
over (``Started.take``) inside the ``try`` whose ``finally`` stops it.
"""

from __future__ import annotations

import shutil
import signal
import sys
import threading
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, BinaryIO

from ..errors import Interrupted, UsageError
from ..qemu.binary import find_binary
from ..qemu.chardevs import rewrite_chardevs
from ..qemu.process import QemuProcess
from ..qemu.workdir import make_workdir
from .job import Job, Options, check_detaching
from .terminal import typing_fd


def spawn(job: Job, opts: Options, out: BinaryIO) -> QemuProcess:
    """Find the binary (``job.binary``, else as --qemu and ``find_binary`` say) and start QEMU for ``job``.

    Raises QemuNotFoundError (3), UsageError (2: a detaching option, an
    unwritable --serial file) or QemuError (5: QEMU cannot be executed).
    """
    binary_path = Path(job.binary) if job.binary else find_binary(job.system or "", opts.qemu)
    return start_qemu(binary_path, job, opts, out)


def start_qemu(binary: Path, job: Job, opts: Options, out: BinaryIO) -> QemuProcess:
    """Start ``binary`` with the job's arguments, ``-preconfig -S`` and its console where --serial says."""
    args = list(job.qemu_args)
    serial = opts.serial or ("log" if opts.detach else "stdio")
    check_detaching([*args, *opts.extra_args])
    console: BinaryIO | None = None if opts.detach else out
    owned = False
    if serial.startswith("file:") and not opts.detach and len(job.console_ids) == 1:
        # machinedesc writes the file itself (QEMU's stdio relayed into it): QEMU's
        # file chardev drops output silently when the disk is full, we report it.
        path = Path(serial[len("file:"):]).expanduser()
        try:
            console, owned = open(path, "wb"), True  # noqa: SIM115 - closed by QemuProcess.cleanup
        except OSError as exc:
            raise UsageError(f"machinedesc: cannot write --serial file {path}: {exc.strerror or exc}") from None
        serial = "relay"
    workdir: Path | None = None
    if serial != "stdio":
        workdir = make_workdir()
        try:
            args = rewrite_chardevs(args, job.console_ids, serial, workdir)
        except ValueError as exc:
            shutil.rmtree(workdir, ignore_errors=True)
            if owned and console is not None:
                console.close()
            raise UsageError(str(exc)) from None
    if "-preconfig" not in args and "--preconfig" not in args:
        args.append("-preconfig")
    # Always stopped until verified: a fast guest must not power off before we look at it.
    if "-S" not in args:
        args.append("-S")
    args.extend(opts.extra_args)
    try:
        return QemuProcess(binary, args, console=console, keep_alive=opts.detach, workdir=workdir,
                           console_input=typing_fd(job, opts) is not None, close_console=owned)
    except BaseException:
        if owned and console is not None:
            console.close()
        raise


#: The signals that end machinedesc; each becomes Interrupted (exit 128+N) while ``Started`` holds QEMU.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class Started:
    """A QEMU started ahead of the engine (``start_early``); a context manager around the engine's run.

    Leaving the ``with`` stops QEMU and removes its directory unless ``drive``
    took it over (``take``). While it holds QEMU, SIGINT, SIGTERM and SIGHUP
    (those not ignored) raise Interrupted, so that they end the wait through
    that clean-up: SIGTERM would otherwise end machinedesc at once, QEMU with
    it (PR_SET_PDEATHSIG) but not its directory and socket. A signal that
    comes while QEMU is being started or stopped is held until that is done.
    ``drive`` installs its own handlers before it takes QEMU over; the
    previous ones are restored on the way out.
    """

    def __init__(self) -> None:
        self.qemu: QemuProcess | None = None
        self._saved: dict[int, Any] = {}
        self._holding = False
        self._pending: int | None = None

    def take(self) -> QemuProcess | None:
        """The QEMU started here, now the caller's to stop (None if none was, or it was taken)."""
        qemu, self.qemu = self.qemu, None
        return qemu

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self._holding:
            self._pending = self._pending or signum
            return
        raise Interrupted(signum)

    def _catch_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers belong to the main thread; elsewhere signals reach it, not us
        for signum in STOP_SIGNALS:
            previous = signal.getsignal(signum)
            if previous is not signal.SIG_IGN:  # `nohup machinedesc apply`: a hang-up stays ignored
                self._saved[signum] = previous
                signal.signal(signum, self._on_signal)

    def _start(self, job: Job, opts: Options, out: BinaryIO) -> None:
        """``spawn`` with the signals held: an exception must not land between the fork and ``self.qemu``."""
        self._catch_signals()
        self._holding = True
        try:
            self.qemu = spawn(job, opts, out)
        finally:
            self._holding = False
        if self._pending is not None:
            raise Interrupted(self._pending)

    def __enter__(self) -> Started:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._holding = True
        try:
            qemu = self.take()
            if qemu is not None:
                # As drive() does: an interrupt gets a clean shutdown (SIGTERM), a failure SIGKILL.
                interrupted = isinstance(exc, (Interrupted, KeyboardInterrupt)) or self._pending is not None
                qemu.cleanup(grace=3.0 if interrupted else 0.0)
        finally:
            for signum, previous in self._saved.items():
                signal.signal(signum, previous)
            self._saved.clear()
        if self._pending is not None and exc is None:
            raise Interrupted(self._pending)


def start_early(job: Job, opts: Options) -> Started:
    """Start QEMU for ``job`` now, before the engine is imported; ``with`` the result around the engine's run.

    Checks the options first (Options.validate: nothing starts for flags that
    make no sense). With --connect nothing is started (the QEMU is the
    user's). Raises what ``spawn`` raises (or Interrupted), with nothing left behind.
    """
    opts.validate()
    started = Started()
    if opts.connect:
        return started
    out = opts.stdout if opts.stdout is not None else sys.stdout.buffer
    try:
        started._start(job, opts, out)
    except BaseException as exc:
        started.__exit__(type(exc), exc, exc.__traceback__)
        raise
    return started
