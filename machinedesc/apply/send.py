"""Send a job's steps to QEMU in order, pipelined where that is safe, checking phases; StepError at the first failure.

A failing step is reported with its number, its phase, its command in
qmp-shell syntax, its note, its source location (with the include chain)
and QEMU's answer; the StepError keeps what was sent and received.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
from typing import Any

from qemu.qmp import ExecuteError

from ..errors import Hints, QemuError, QemuTimeoutError, StepError, UnknownTypeError
from ..plan.steps import Step
from ..qemu.phases import Phase
from ..qemu.session import Session
from .job import Job
from .progress import Reporter


#: Commands in flight at once while building a QEMU that machinedesc started.
#: QEMU queues up to 8 requests per monitor (QMP_REQ_QUEUE_LEN_MAX; it then
#: pauses reading, nothing is lost), so 8 keeps it always busy.
PIPELINE_WINDOW = 8


#: Commands that only change the machine being built (which is killed if a
#: step fails), so they may be sent while earlier steps are still in flight.
PIPELINE_SAFE = frozenset({"device_add", "qom-set", "qom-get", "qom-list", "x-sysbus-mmio-map"})


def step_text(step: Step) -> str:
    """The step's command in qmp-shell syntax (JSON when an argument has no qmp-shell literal)."""
    # Imported here: the QMP file syntax is needed for a progress line or a failure, not to build.
    from ..plan.qmpfile import format_command

    try:
        return format_command(step.command, step.arguments)
    except ValueError:
        return json.dumps({"execute": step.command, "arguments": dict(step.arguments)})


#: How long a failed send waits for the replies to the commands in flight behind the failure.
SETTLE_SECONDS = 1.0


async def send_all(session: Session[Reporter], job: Job, window: int = 1) -> None:
    """Send the steps in order, checking phases; raise StepError at the first failure.

    ``window`` > 1 pipelines: up to that many commands are in flight at once
    (QMP executes them strictly in order; replies are matched by id).  The
    pipeline drains before every phase check, before every transition and
    before any command outside PIPELINE_SAFE.  A failure is reported for the
    first failing step; commands already in flight behind it may still run,
    so only use a window when QEMU is killed on failure (never with --connect).
    """
    total = len(job.steps)
    checked: str | None = None
    inflight: collections.deque[tuple[int, Step, asyncio.Task[Any]]] = collections.deque()
    try:
        for n, step in enumerate(job.steps, start=1):
            if job.check_phases and step.phase and (checked is None or not step.phase.accepts(checked)):
                await _drain(inflight, total)
                actual = await session.phase()
                if not step.phase.accepts(actual):
                    raise StepError(_step_failure(n, total, step,
                                                  f"QEMU is in phase '{actual}', but this step belongs "
                                                  f"to phase '{step.phase.value}'"))
                checked = actual
            expected = Phase.after(step.command)
            if expected is not None or step.command not in PIPELINE_SAFE:
                # A phase transition, or a command that may act outside QEMU's machine
                # (object-add of a file backend, chardev-add, raw escape-hatch
                # commands), is only sent once every step before it has succeeded.
                await _drain(inflight, total)
            if session.reporter.tty:  # the step's text costs a qmp-shell rendering: only for a terminal
                session.reporter.progress(n, total, step.phase.value if step.phase else None, step_text(step))
            task = asyncio.ensure_future(session.call(step.command, step.arguments))
            inflight.append((n, step, task))
            if expected is not None or len(inflight) >= window:
                await _drain(inflight, total, keep=0 if expected is not None else window - 1)
            if expected is not None and job.check_phases:
                actual = await session.phase()
                if not expected.accepts(actual):
                    raise StepError(_step_failure(n, total, step,
                                                  f"after {step.command} QEMU is in phase '{actual}', "
                                                  f"expected '{expected.value}'"))
                checked = actual
        await _drain(inflight, total)
    except StepError:
        # QEMU answered (it refused a step): let the commands in flight behind it get their
        # replies, so that none arrives for a cancelled request (qemu.qmp logs each such
        # reply as an error, which a test report then shows).
        if inflight:
            await asyncio.wait([t for _, _, t in inflight], timeout=SETTLE_SECONDS)
        raise
    finally:
        # On failure: do not leave tasks (and their exceptions) dangling.
        for _, _, task in inflight:
            task.cancel()
        if inflight:
            await asyncio.gather(*(t for _, _, t in inflight), return_exceptions=True)
    session.reporter.clear()


async def _drain(inflight: collections.deque[tuple[int, Step, asyncio.Task[Any]]], total: int,
                 keep: int = 0) -> None:
    """Wait for the oldest commands in flight until only ``keep`` remain; StepError on an error reply."""
    while len(inflight) > keep:
        n, step, task = inflight[0]
        try:
            reply = await task
        except ExecuteError as exc:
            raise refused(_step_failure(n, total, step,
                                         f"QEMU error {exc.error_class}: {exc.error.error.desc}"), exc) from None
        except QemuError as exc:
            # QEMU died (or went silent) on this step: QMP runs commands in order, so
            # the oldest one without a reply is the one it was executing.
            what = ("QEMU did not answer this step" if isinstance(exc, QemuTimeoutError)
                    else "QEMU stopped during this step")
            died = _step_failure(n, total, step, what)
            raise type(exc)(f"{died}\n{exc.message}", exc.stderr_tail) from None
        if step.command == "human-monitor-command":
            failure = hmp_failure(reply)
            if failure:
                raise StepError(_step_failure(n, total, step, f"HMP error: {failure}"),
                                sent=step.message, received={"return": reply})
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


def refused(message: str, exc: ExecuteError) -> StepError:
    """The StepError for a command QEMU refused: ``message``, and what was sent and received."""
    return StepError(message, sent=dict(exc.sent), received=dict(exc.received), error_class=exc.error_class)


def unknown_type_failure(job: Job, exc: UnknownTypeError, binary: str) -> str:
    """The step failure for the first step that creates a device type QEMU lacks (nothing was sent)."""
    total = len(job.steps)
    for n, step in enumerate(job.steps, start=1):
        driver = str(step.arguments.get("driver", "")) if step.command == "device_add" else ""
        if driver in exc.types:
            why = f"{binary} has no device type '{driver}' (nothing was sent to QEMU)"
            hint = Hints().did_you_mean(driver, exc.known)
            if hint:
                why += f"\n  hint: {hint}"
            return _step_failure(n, total, step, why)
    return f"machinedesc: {binary}: {exc}"


def _step_failure(n: int, total: int, step: Step, why: str) -> str:
    where = f"{step.location}: " if step.location else ""
    head = f"{where}step {n}/{total} failed"
    if step.phase:
        head += f" (phase {step.phase.value})"
    lines = [head, f"  {step_text(step)}"]
    if step.note:
        lines.append(f"  step: {step.note}")
    if step.location:
        lines.extend(step.location.describe_chain())
    lines.append(f"  {why}")
    return "\n".join(lines)
