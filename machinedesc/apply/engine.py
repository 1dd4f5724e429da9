"""Drive QEMU over QMP: start or connect, capability probe, send, verify, run the guest, clean up.

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
import io
import signal
import sys
import time
from collections.abc import Awaitable
from pathlib import Path

from qemu.qmp import ExecuteError, QMPClient

from ..errors import CapabilityError, Interrupted, MachinedescError, QemuError, StepError, UnknownTypeError
from ..plan.steps import Plan
from ..qemu.capabilities import Capabilities, probe
from ..qemu.process import QemuProcess
from ..qemu.session import Session, connect, disconnect, silence_qmp_logging
from .guest import Stop, launch, run_guest
from .job import Job, Options, plan_job
from .progress import Reporter
from .send import BATCH_COMMAND, BATCH_STEPS, PIPELINE_WINDOW, refused, send_all, unknown_type_failure
from .spawn import Started
from .verify import verify


async def _probe(session: Session[Reporter], job: Job, binary: str, binary_path: Path | None) -> Capabilities:
    """The capability probe for everything the job sends (see capabilities.probe); an unknown
    device type is a StepError (exit 4) at the first step that names one."""
    needed = set(job.extra_commands) | ({"query-machine-phase"} if job.check_phases else set())
    try:
        return await probe(session, job.title, [(s.command, s.arguments) for s in job.steps], needed,
                    binary, binary_path, [str(s.location) if s.location else "" for s in job.steps])
    except UnknownTypeError as exc:
        raise StepError(unknown_type_failure(job, exc, binary)) from None


async def drive(job: Job, opts: Options, started: Started | None = None) -> int:
    """Start (or connect to) QEMU, build the job's machine, then run/detach/leave; returns 0.

    ``started`` holds a QEMU already started for the job (``spawn.start_early``):
    drive takes it over instead of starting one. Raises CapabilityError (3),
    StepError (4), QemuError (5), ConsoleError (6), Interrupted (130+) or
    UsageError (2); on every path the QEMU started here (or taken over) is
    gone and its directory removed, unless the job detached successfully.
    """
    opts.validate()
    silence_qmp_logging()
    err = opts.stderr if opts.stderr is not None else sys.stderr
    out = opts.stdout if opts.stdout is not None else sys.stdout.buffer
    reporter = Reporter(err, opts.verbose)
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()
    assert main_task is not None
    stop = Stop(main_task, loop)
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
            qemu = launch(job, opts, out, stop, started)
            binary = str(qemu.binary)
            await _connect_started(client, qemu, job, opts)
        session = Session(client, opts.timeout, qemu, reporter, binary)
        await _build(session, job, opts, t_begin)
        if qemu is not None:
            await run_guest(session, qemu, job, opts, stop, err, out)
        ok = True
        return 0
    except ExecuteError as exc:
        # Steps and checks wrap their errors with context; this is a query of ours that QEMU refused.
        raise refused(f"machinedesc: QEMU refused {dict(exc.sent)}: {exc.error_class}: "
                       f"{exc.error.error.desc}", exc) from None
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
    caps = await _probe(session, job, session.where, None if opts.connect else Path(session.where))
    start = time.monotonic()
    # Pipelining is safe only when a failure kills QEMU: never in a QEMU we merely
    # connected to.  A batch stops at its first failure, so it is safe anywhere.
    # With -v each reply is echoed right after its command.
    batch = BATCH_STEPS if BATCH_COMMAND in caps.commands and not opts.verbose else 0
    await send_all(session, job, window=1 if opts.connect or opts.verbose else PIPELINE_WINDOW, batch=batch)
    t_sent = time.monotonic()
    await verify(session, job.checks, job.steps)
    if opts.timings is not None:
        opts.timings.update(start=t_connected - t_begin, probe=start - t_connected,
                            send=t_sent - start, verify=time.monotonic() - t_sent,
                            steps=float(len(job.steps)))
    session.reporter.say(f"machinedesc: built {job.title}: {len(job.steps)} steps in "
                         f"{time.monotonic() - start:.2f} s" + (", verified" if job.checks else ""))


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


__all__ = ["apply_plan", "drive", "run_async"]
