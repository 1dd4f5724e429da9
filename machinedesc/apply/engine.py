"""Drive QEMU over QMP: capability probe, phase checks, steps with progress, verification, the guest run.

``apply_plan`` builds a board's machine from a ``Plan``; ``drive`` is the
engine it shares with the QMP configurator (``configurator.run``): start QEMU
(or connect to one), probe, send, verify, then run the guest, detach, or
leave.  Every exit path - success, a failing step, QEMU dying, a timeout,
Ctrl-C - goes through one ``finally`` that stops the QEMU machinedesc started
and removes its private directory; a QEMU reached with ``--connect`` is never
stopped.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import difflib
import io
import json
import math
import os
import re
import shutil
import signal
import sys
import termios
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from qemu.qmp import ExecuteError, QMPClient

from ..errors import MachinedescError, UsageError
from ..plan.qmpfile import format_command
from ..plan.steps import Plan, Step
from ..qemu.capabilities import CapabilityError, UnknownTypeError, probe
from ..qemu.process import (
    ConsoleError,
    QemuError,
    QemuNotFoundError,
    QemuProcess,
    QemuTimeoutError,
    find_binary,
    make_workdir,
    rewrite_chardevs,
)
from ..qemu.session import Session, connect, disconnect, silence_qmp_logging, stderr_tail
from ..source import SourceLocation
from .progress import Reporter

#: Commands that move the machine to another phase, and the phase they lead to.
TRANSITIONS: Mapping[str, str] = {"x-machine-init": "initialized", "x-exit-preconfig": "ready"}

# QEMU 10 with -preconfig stops in late-backends-created, after accel-created.
_PHASE_EQUIV: Mapping[str, frozenset[str]] = {
    "accel-created": frozenset({"accel-created", "late-backends-created"}),
    "late-backends-created": frozenset({"accel-created", "late-backends-created"}),
    "initialized": frozenset({"initialized"}),
    "ready": frozenset({"ready"}),
}

#: Commands in flight at once while building a QEMU that machinedesc started.
#: QEMU queues up to 8 requests per monitor (QMP_REQ_QUEUE_LEN_MAX; it then
#: pauses reading, nothing is lost), so 8 keeps it always busy.
PIPELINE_WINDOW = 8

#: Commands that only change the machine being built (which is killed if a
#: step fails), so they may be sent while earlier steps are still in flight.
PIPELINE_SAFE = frozenset({"device_add", "qom-set", "qom-get", "qom-list", "x-sysbus-mmio-map"})


class StepError(MachinedescError):
    """A step failed, the machine was in the wrong phase, or verification found a difference."""

    exit_code = 4


class Interrupted(MachinedescError):
    """The user pressed Ctrl-C (or machinedesc got SIGTERM/SIGHUP); QEMU was shut down."""

    exit_code = 130

    def __init__(self, signum: int) -> None:
        name = signal.Signals(signum).name
        super().__init__(f"machinedesc: interrupted ({name})")
        self.exit_code = 128 + signum


@dataclass(frozen=True)
class Action:
    """One QMP command to send, with where it came from (board or QMP file line)."""

    command: str
    arguments: Mapping[str, Any]
    phase: str | None
    origin: SourceLocation | None
    note: str = ""

    @property
    def text(self) -> str:
        """The command in qmp-shell syntax."""
        try:
            return format_command(self.command, self.arguments)
        except ValueError:
            return json.dumps({"execute": self.command, "arguments": dict(self.arguments)})

    @classmethod
    def from_step(cls, step: Step) -> Action:
        note = step.reason
        if step.component and step.component not in note:
            note = f"{step.component}: {note}" if note else step.component
        return cls(step.command, step.arguments, step.phase.value, step.location, note)


@dataclass(frozen=True)
class Check:
    """A post-build expectation: ``path`` exists (and is realized if a device), or a link's value."""

    what: str
    path: str
    origin: SourceLocation | None
    prop: str | None = None
    target: str | None = None


@dataclass
class Options:
    """How to reach QEMU and how to run the guest (the apply/run command-line flags)."""

    qemu: str | None = None
    serial: str | None = None
    paused: bool = False
    detach: bool = False
    connect: str | None = None
    timeout: float = 30.0
    verbose: bool = False
    extra_args: Sequence[str] = ()
    #: --allow-host-access: run may send commands and use header options that touch the host.
    allow_host_access: bool = False
    stdout: BinaryIO | None = None
    stderr: TextIO | None = None
    #: Called with time.monotonic() of the console's first byte (benchmarks).
    on_first_output: Callable[[float], None] | None = None
    #: If given, drive() records seconds per stage here: start, probe, send, verify (benchmarks).
    timings: dict[str, float] | None = None

    def validate(self) -> None:
        """Raise UsageError (exit 2) for flag combinations that make no sense."""
        if self.connect:
            bad = [name for name, on in (("--qemu", self.qemu), ("--serial", self.serial),
                                         ("--paused", self.paused), ("--detach", self.detach),
                                         ("extra QEMU arguments", bool(self.extra_args))) if on]
            if bad:
                raise UsageError(f"{', '.join(bad)} cannot be used with --connect "
                                 "(the QEMU you connect to was started by you)")
        if self.detach and self.serial == "stdio":
            raise UsageError("--serial stdio cannot be used with --detach (use file:PATH, socket:PATH or none)")
        check_timeout(self.timeout)


def check_timeout(seconds: float) -> None:
    """Raise UsageError unless ``seconds`` is a finite positive number (not nan, not inf)."""
    if not (math.isfinite(seconds) and seconds > 0):
        raise UsageError(f"--timeout must be a positive number of seconds, got {seconds}")


#: QEMU options that take QEMU out of machinedesc's control (it forks away, or its pid
#: file or root changes): refused in a QEMU machinedesc starts (use --detach).
DETACHING_OPTIONS: Mapping[str, str] = {
    "-daemonize": "QEMU would fork into the background, out of machinedesc's control",
    "-pidfile": "machinedesc keeps QEMU's pid file in its private directory",
    "-run-with": "QEMU would change its root or user (or fork a teardown process) under machinedesc",
}


def detaching_option(args: Sequence[str]) -> tuple[str, str] | None:
    """The first option in ``args`` that would detach QEMU from machinedesc, and why; or None."""
    for arg in args:
        name = "-" + arg.lstrip("-").split("=", 1)[0] if arg.startswith("-") else ""
        if name in DETACHING_OPTIONS:
            return arg, DETACHING_OPTIONS[name]
    return None


DETACH_HINT = "to leave QEMU running in the background use --detach"


def check_detaching(args: Sequence[str]) -> None:
    """Raise UsageError (exit 2) if ``args`` hold an option that detaches QEMU from machinedesc."""
    found = detaching_option(args)
    if found:
        raise UsageError(f"machinedesc: QEMU option '{found[0]}' is not allowed: {found[1]}\n  hint: {DETACH_HINT}")


@dataclass
class Job:
    """What to build: the actions, the checks afterwards, and how to start QEMU."""

    title: str
    actions: Sequence[Action]
    system: str | None
    qemu_args: Sequence[str]
    console_ids: Sequence[str]
    checks: Sequence[Check] = ()
    check_phases: bool = True
    binary: str | None = None
    extra_commands: frozenset[str] = field(default_factory=frozenset)


async def _probe(session: Session[Reporter], job: Job, binary: str, binary_path: Path | None) -> None:
    """The capability probe for everything the job sends (see capabilities.probe); an unknown
    device type is a StepError (exit 4) at the first step that names one."""
    needed = set(job.extra_commands) | ({"query-machine-phase"} if job.check_phases else set())
    try:
        await probe(session, job.title, [(a.command, a.arguments) for a in job.actions], needed,
                    binary, binary_path)
    except UnknownTypeError as exc:
        raise StepError(unknown_type_failure(job, exc, binary)) from None


def unknown_type_failure(job: Job, exc: UnknownTypeError, binary: str) -> str:
    """The step failure for the first action that creates a device type QEMU lacks (nothing was sent)."""
    total = len(job.actions)
    for n, action in enumerate(job.actions, start=1):
        driver = str(action.arguments.get("driver", "")) if action.command == "device_add" else ""
        if driver in exc.types:
            close = difflib.get_close_matches(driver, sorted(exc.known), n=1, cutoff=0.6)
            why = f"{binary} has no device type '{driver}' (nothing was sent to QEMU)"
            if close:
                why += f"\n  hint: did you mean '{close[0]}'?"
            return _step_failure(n, total, action, why)
    return f"machinedesc: {binary}: {exc}"


def _phase_ok(expected: str, actual: str) -> bool:
    return actual in _PHASE_EQUIV.get(expected, frozenset({expected}))


async def send_all(session: Session[Reporter], job: Job, window: int = 1) -> None:
    """Send the actions in order, checking phases; raise StepError at the first failure.

    ``window`` > 1 pipelines: up to that many commands are in flight at once
    (QMP executes them strictly in order; replies are matched by id).  The
    pipeline drains before every phase check, before every transition and
    before any command outside PIPELINE_SAFE.  A failure is reported for the
    first failing step; commands already in flight behind it may still run,
    so only use a window when QEMU is killed on failure (never with --connect).
    """
    total = len(job.actions)
    checked: str | None = None
    inflight: collections.deque[tuple[int, Action, asyncio.Task[Any]]] = collections.deque()
    try:
        for n, action in enumerate(job.actions, start=1):
            if job.check_phases and action.phase and (checked is None or not _phase_ok(action.phase, checked)):
                await _drain(inflight, total)
                actual = await session.phase()
                if not _phase_ok(action.phase, actual):
                    raise StepError(_step_failure(n, total, action,
                                                  f"QEMU is in phase '{actual}', but this step belongs "
                                                  f"to phase '{action.phase}'"))
                checked = actual
            expected = TRANSITIONS.get(action.command)
            if expected is not None or action.command not in PIPELINE_SAFE:
                # A phase transition, or a command that may act outside QEMU's machine
                # (object-add of a file backend, chardev-add, raw escape-hatch
                # commands), is only sent once every step before it has succeeded.
                await _drain(inflight, total)
            session.reporter.progress(n, total, action.phase, action.text)
            task = asyncio.ensure_future(session.call(action.command, action.arguments))
            inflight.append((n, action, task))
            if expected is not None or len(inflight) >= window:
                await _drain(inflight, total, keep=0 if expected is not None else window - 1)
            if expected is not None and job.check_phases:
                actual = await session.phase()
                if not _phase_ok(expected, actual):
                    raise StepError(_step_failure(n, total, action,
                                                  f"after {action.command} QEMU is in phase '{actual}', "
                                                  f"expected '{expected}'"))
                checked = actual
        await _drain(inflight, total)
    finally:
        # On failure: do not leave tasks (and their exceptions) dangling.
        for _, _, task in inflight:
            task.cancel()
        if inflight:
            await asyncio.gather(*(t for _, _, t in inflight), return_exceptions=True)
    session.reporter.clear()


async def _drain(inflight: collections.deque[tuple[int, Action, asyncio.Task[Any]]], total: int,
                 keep: int = 0) -> None:
    """Wait for the oldest commands in flight until only ``keep`` remain; StepError on an error reply."""
    while len(inflight) > keep:
        n, action, task = inflight[0]
        try:
            reply = await task
        except ExecuteError as exc:
            raise StepError(_step_failure(n, total, action,
                                          f"QEMU error {exc.error_class}: {exc.error.error.desc}")) from None
        except QemuError as exc:
            # QEMU died (or went silent) on this step: QMP runs commands in order, so
            # the oldest one without a reply is the one it was executing.
            died = _step_failure(n, total, action, "QEMU stopped during this step")
            raise type(exc)(f"{died}\n{exc}") from None
        if action.command == "human-monitor-command":
            failure = hmp_failure(reply)
            if failure:
                raise StepError(_step_failure(n, total, action, f"HMP error: {failure}"))
        inflight.popleft()


# HMP reports its errors in the reply text, not as a QMP error: "Error: ..."
# (hmp_handle_error), "unknown command: ..." and the argument parser's
# 'Try "help CMD" for more information'.
_HMP_ERROR = re.compile(r'^(Error: .*|unknown command: .*|Try "help .*)$', re.MULTILINE)


def hmp_failure(reply: Any) -> str | None:
    """The error text of a human-monitor-command reply that reports a failure, else None."""
    if not isinstance(reply, str) or not _HMP_ERROR.search(reply):
        return None
    text = " ".join(line.strip() for line in reply.splitlines() if line.strip())
    return text[:500]


def _step_failure(n: int, total: int, action: Action, why: str) -> str:
    where = f"{action.origin}: " if action.origin else ""
    head = f"{where}step {n}/{total} failed"
    if action.phase:
        head += f" (phase {action.phase})"
    lines = [head, f"  {action.text}"]
    if action.note:
        lines.append(f"  step: {action.note}")
    if action.origin:
        lines.extend(action.origin.describe_chain())
    lines.append(f"  {why}")
    return "\n".join(lines)


async def verify(session: Session[Reporter], checks: Sequence[Check]) -> None:
    """Check every component and link against QEMU's QOM tree; StepError lists all differences."""
    limit = asyncio.Semaphore(PIPELINE_WINDOW)

    async def one(check: Check) -> str | None:
        # Read-only queries: pipelined like the steps, in a QEMU we started or not.
        async with limit:
            if check.prop is None:
                problem = await _check_component(session, check)
            else:
                problem = await _check_link(session, check)
        where = f"{check.origin}: " if check.origin else ""
        return where + problem if problem else None

    tasks = [asyncio.ensure_future(one(c)) for c in checks]
    try:
        results = await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    problems = [p for p in results if p]
    if problems:
        raise StepError("machinedesc: the machine QEMU built differs from the board:\n"
                        + "\n".join("  " + p for p in problems))


async def _check_component(session: Session[Reporter], check: Check) -> str | None:
    try:
        realized = await session.call("qom-get", {"path": check.path, "property": "realized"})
    except ExecuteError:
        # Not a device (e.g. a backend object) or not there at all: ask whether it exists.
        try:
            await session.call("qom-list", {"path": check.path})
        except ExecuteError:
            return f"{check.what}: no object at {check.path}"
        return None
    if realized is not True:
        return f"{check.what}: {check.path} exists but is not realized"
    return None


async def _check_link(session: Session[Reporter], check: Check) -> str | None:
    assert check.prop is not None and check.target is not None
    try:
        value = await session.call("qom-get", {"path": check.path, "property": check.prop})
    except ExecuteError as exc:
        return f"{check.what}: cannot read {check.path} property {check.prop}: {exc.error.error.desc}"
    target = check.target
    ok = value == target or (not target.startswith("/") and isinstance(value, str)
                             and value.endswith("/" + target))
    if not ok:
        return f"{check.what} is {value!r}, the board says {target!r}"
    return None


async def _wait_exit(qemu: QemuProcess) -> int:
    """Wait (without blocking the loop or leaving a thread behind) until QEMU exits."""
    loop = asyncio.get_running_loop()
    try:
        fd = os.pidfd_open(qemu.pid)
    except (AttributeError, OSError):
        while qemu.poll() is None:
            await asyncio.sleep(0.05)
        return qemu.poll() or 0
    done = loop.create_future()

    def ready() -> None:
        if not done.done():
            done.set_result(None)
    try:
        loop.add_reader(fd, ready)
        if qemu.poll() is None:
            await done
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    rc = qemu.wait()
    return rc if rc is not None else 0


class _Stop:
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
            return _console_lost(self.console, opts)
        return None


async def drive(job: Job, opts: Options) -> int:
    """Start (or connect to) QEMU, build the job's machine, then run/detach/leave; returns 0.

    Raises CapabilityError (3), StepError (4), QemuError (5), ConsoleError (6),
    Interrupted (130+) or UsageError (2); on every path the QEMU started here
    is gone and its directory removed, unless the job detached successfully.
    """
    opts.validate()
    silence_qmp_logging()
    err = opts.stderr if opts.stderr is not None else sys.stderr
    out = opts.stdout if opts.stdout is not None else sys.stdout.buffer
    reporter = Reporter(err, opts.verbose)
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    assert main_task is not None
    stop = _Stop(main_task, loop)
    # A signal the caller ignores stays ignored: `nohup machinedesc apply ...`
    # must survive the hang-up it was started to survive.
    handled = tuple(s for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
                    if signal.getsignal(s) is not signal.SIG_IGN)
    for signum in handled:
        loop.add_signal_handler(signum, stop.on_signal, signum)
    qemu: QemuProcess | None = None
    client = QMPClient(job.title)
    ok = False
    t_begin = time.monotonic()
    try:
        if opts.connect:
            binary = f"the QEMU at {opts.connect}"
            await connect(client, opts.connect, opts.timeout, None)
        else:
            qemu = _launch(job, opts, out, stop)
            binary = str(qemu.binary)
            await _connect_started(client, qemu, job, opts)
        session = Session(client, opts.timeout, qemu, reporter, binary)
        await _build(session, job, opts, t_begin)
        if qemu is not None:
            await _run_guest(session, qemu, job, opts, stop, err, out)
        ok = True
        return 0
    except ExecuteError as exc:
        # Steps and checks wrap their errors with context; this is a query of ours that QEMU refused.
        raise StepError(f"machinedesc: QEMU refused {dict(exc.sent)}: {exc.error_class}: "
                        f"{exc.error.error.desc}") from None
    except asyncio.CancelledError:
        why = stop.error(opts)
        if why is not None:
            raise why from None
        raise
    finally:
        stop.cleaning = True
        reporter.clear()
        if qemu is not None and not (ok and opts.detach):
            # An interrupt gets a clean shutdown (SIGTERM); a failure leaves nothing to save.
            qemu.cleanup(grace=3.0 if stop.signal is not None else 0.0)
        await disconnect(client)
        if qemu is not None and ok and opts.detach:
            qemu.cleanup()
        for signum in handled:
            loop.remove_signal_handler(signum)


def _launch(job: Job, opts: Options, out: BinaryIO, stop: _Stop) -> QemuProcess:
    """Find the binary and start QEMU for ``job``, its console failures reported to ``stop``."""
    binary_path = Path(job.binary) if job.binary else find_binary(job.system or "", opts.qemu)
    qemu = _start(binary_path, job, opts, out)
    qemu.on_console_error = stop.on_console_error
    if opts.on_first_output is not None:
        _watch_first_output(qemu, opts.on_first_output)
    return qemu


async def _connect_started(client: QMPClient, qemu: QemuProcess, job: Job, opts: Options) -> None:
    """Connect to the QEMU we started; if it died first, say what stock QEMU lacks (exit 3) when that is why."""
    try:
        await connect(client, qemu.qmp_socket, opts.timeout, qemu)
    except QemuError as exc:
        if qemu.poll() is None:
            raise
        # Stock QEMU already refuses the board's command line (e.g. -smp maxcpus
        # on -M none): tell the user what is missing, not only how QEMU died.
        await _probe_minimal(qemu.binary, job, opts, str(exc))
        raise


async def _build(session: Session[Reporter], job: Job, opts: Options, t_begin: float) -> None:
    """Probe, send every step, verify; record timings when asked."""
    t_connected = time.monotonic()
    await _probe(session, job, session.where, None if opts.connect else Path(session.where))
    start = time.monotonic()
    # Pipelining is safe only when a failure kills QEMU: never in a QEMU we merely
    # connected to.  With -v each reply is echoed right after its command.
    await send_all(session, job, window=1 if opts.connect or opts.verbose else PIPELINE_WINDOW)
    t_sent = time.monotonic()
    await verify(session, job.checks)
    if opts.timings is not None:
        opts.timings.update(start=t_connected - t_begin, probe=start - t_connected,
                            send=t_sent - start, verify=time.monotonic() - t_sent,
                            steps=float(len(job.actions)))
    session.reporter.say(f"machinedesc: built {job.title}: {len(job.actions)} steps in "
                         f"{time.monotonic() - start:.2f} s" + (", verified" if job.checks else ""))


async def _run_guest(session: Session[Reporter], qemu: QemuProcess, job: Job, opts: Options, stop: _Stop,
                     err: TextIO, out: BinaryIO) -> None:
    """After a verified build: start the CPUs (unless paused), then detach or wait for QEMU to exit."""
    serial = opts.serial or ""
    if serial.startswith("socket:") and not (opts.paused or opts.detach) and job.console_ids:
        await _wait_console_client(session, job.console_ids, serial[len("socket:"):], err)
    if not opts.paused:
        try:
            await session.call("cont")
        except ExecuteError as exc:
            raise StepError(f"machinedesc: cannot start the CPUs of {job.title} (does it end with "
                            f"x-exit-preconfig?): QEMU error {exc.error_class}: "
                            f"{exc.error.error.desc}") from None
    await disconnect(session.client)
    if stop.signal is not None:
        # The signal came while qemu.qmp was tearing down and got absorbed there.
        raise Interrupted(stop.signal)
    if opts.detach:
        qemu.detach()
        _print_detached(qemu, job, opts, out)
        return
    if opts.paused:
        err.write(f"machinedesc: CPUs are paused; QMP socket {qemu.qmp_path} "
                  "(connect, e.g. qmp-shell, and send 'cont'); Ctrl-C stops QEMU\n")
        err.flush()
    with _keystrokes_to(qemu, _typing_fd(job, opts)):
        rc = await _wait_exit(qemu)
    qemu.finish_console()
    if qemu.console_error is not None:
        raise _console_lost(qemu.console_error, opts)
    if rc != 0:
        raise QemuError(f"machinedesc: QEMU {qemu.describe_exit()} while the guest was running"
                        + stderr_tail(qemu))


def _console_lost(exc: OSError, opts: Options) -> ConsoleError:
    where = opts.serial or "standard output"
    return ConsoleError(f"machinedesc: cannot write the guest console to {where}: {exc.strerror or exc}; "
                        "QEMU was stopped, console output was lost")


async def _probe_minimal(binary: Path, job: Job, opts: Options, why: str) -> None:
    """Probe ``binary`` started with a minimal command line; raise its CapabilityError, if any."""
    probe_qemu = QemuProcess(binary, ["-M", "none", "-nodefaults", "-display", "none", "-preconfig"],
                             console=None)
    client = QMPClient("probe")
    try:
        await connect(client, probe_qemu.qmp_socket, opts.timeout, probe_qemu)
        session = Session(client, opts.timeout, probe_qemu, Reporter(io.StringIO(), False), str(binary))
        await _probe(session, job, str(binary), binary)
    except CapabilityError as exc:
        first = why.splitlines()[-1].strip() if why else ""
        raise CapabilityError(f"{exc}\n  (with the board's command line QEMU did not even start: {first})") from None
    except (MachinedescError, ExecuteError):
        return
    finally:
        probe_qemu.cleanup()
        await disconnect(client)


def _start(binary: Path, job: Job, opts: Options, out: BinaryIO) -> QemuProcess:
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
                           console_input=_typing_fd(job, opts) is not None, close_console=owned)
    except BaseException:
        if owned and console is not None:
            console.close()
        raise


def _typing_fd(job: Job, opts: Options) -> int | None:
    """Our stdin, if keystrokes should go to the guest console: a terminal we own, console on stdio."""
    if opts.detach or opts.connect or (opts.serial or "stdio") != "stdio" or not job.console_ids:
        return None
    try:
        if os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp():
            return 0
    except OSError:
        pass
    return None


@contextlib.contextmanager
def _keystrokes_to(qemu: QemuProcess, fd: int | None) -> Iterator[None]:
    """While the guest runs, send each key typed on terminal ``fd`` to its console.

    The terminal is put in cbreak mode (no line editing, no local echo: the
    guest echoes) but keeps ISIG, so Ctrl-C still reaches machinedesc, which
    shuts QEMU down; the previous mode is restored on the way out.
    """
    if fd is None:
        yield
        return
    loop = asyncio.get_running_loop()
    saved = termios.tcgetattr(fd)
    mode = termios.tcgetattr(fd)
    mode[3] &= ~(termios.ECHO | termios.ICANON)
    mode[6][termios.VMIN] = 1
    mode[6][termios.VTIME] = 0

    def typed() -> None:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if data:
            qemu.feed(data)
        else:
            loop.remove_reader(fd)
    termios.tcsetattr(fd, termios.TCSANOW, mode)
    try:
        loop.add_reader(fd, typed)
        yield
    finally:
        loop.remove_reader(fd)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _watch_first_output(qemu: QemuProcess, callback: Callable[[float], None]) -> None:
    def poll() -> None:
        while qemu.poll() is None and qemu.first_output is None:
            time.sleep(0.0005)
        if qemu.first_output is not None:
            callback(qemu.first_output)
    threading.Thread(target=poll, daemon=True).start()


async def _wait_console_client(session: Session[Reporter], ids: Sequence[str], path: str, err: TextIO) -> None:
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


def _print_detached(qemu: QemuProcess, job: Job, opts: Options, out: BinaryIO) -> None:
    lines = [f"pid: {qemu.pid}", f"qmp: {qemu.qmp_path}"]
    serial = opts.serial or "log"
    if serial == "log":
        lines += [f"console {cid}: {qemu.workdir / (cid + '.log')}" for cid in job.console_ids]
    lines.append(f"stderr: {qemu.stderr_path}")
    lines.append(f"directory: {qemu.workdir} (remove it after QEMU exits)")
    out.write(("\n".join(lines) + "\n").encode())
    out.flush()


def plan_job(plan: Plan) -> Job:
    """The Job for a board's Plan: its steps, its checks, its QEMU arguments and console."""
    checks: list[Check] = [Check(f"component '{c.component}'", c.qom_path, c.location) for c in plan.components]
    checks += [Check(f"link {k.source}.{k.prop}", k.source, k.location, k.prop, k.target) for k in plan.links]
    consoles = [cid for cid, backend in plan.chardevs.items() if backend == "stdio"]
    if not consoles and plan.chardevs:
        consoles = [next(iter(plan.chardevs))]
    return Job(
        title=f"board '{plan.name}' ({plan.board})",
        actions=[Action.from_step(s) for s in plan.steps],
        system=plan.system,
        qemu_args=plan.qemu_args,
        console_ids=consoles,
        checks=checks,
        check_phases=True,
        extra_commands=frozenset({"cont"}),
    )


def apply_plan(plan: Plan, opts: Options) -> int:
    """Build ``plan``'s machine in QEMU and run it; returns the exit status (0).

    Raises the MachinedescError subclasses described in ``drive``.
    """
    return run_async(drive(plan_job(plan), opts))


def run_async(coro: Awaitable[int]) -> int:
    """Run one drive() coroutine to completion in a fresh event loop."""
    async def main() -> int:
        try:
            return await coro
        except asyncio.CancelledError:
            # Only drive()'s signal handler cancels; a cancel that landed in
            # its cleanup surfaces here.
            raise Interrupted(signal.SIGINT) from None
    return asyncio.run(main())


__all__ = [
    "Action", "CapabilityError", "Check", "Interrupted", "Job", "Options", "QemuError",
    "QemuNotFoundError", "QemuTimeoutError", "Session", "StepError", "apply_plan", "drive", "plan_job",
    "run_async",
]
