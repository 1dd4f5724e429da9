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
from dataclasses import dataclass
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


#: Steps per x-batch command (patch 44 of the series): enough that QEMU's input, output and
#: main-loop iteration per command vanish from a build's time, few enough that a reply stays
#: small and the progress line moves.
BATCH_STEPS = 256

#: The QMP command that runs a list of commands in order and stops at the first failure.
BATCH_COMMAND = "x-batch"

#: The PIPELINE_SAFE commands that go in an x-batch: those that answer ``{}``, so that a batch's
#: reply stays small.  qom-get and qom-list answer with data (a qom-list of a container of
#: thousands of devices is about 100 KB); 256 of them in one reply would pass qemu.qmp's
#: 10 MB limit on a message and lose the connection, so they go one by one.
BATCH_SAFE = frozenset({"device_add", "qom-set", "x-sysbus-mmio-map"})


@dataclass
class _Sent:
    """Steps ``first``.. in flight as one QMP command: one step, or several in one x-batch."""

    first: int
    steps: list[Step]
    batched: bool
    task: asyncio.Task[Any]


async def send_all(session: Session[Reporter], job: Job, window: int = 1, batch: int = 0) -> None:
    """Send the steps in order, checking phases; raise StepError at the first failure.

    ``window`` > 1 pipelines: up to that many commands are in flight at once
    (QMP executes them strictly in order; replies are matched by id).  The
    pipeline drains before every phase check, before every transition and
    before any command outside PIPELINE_SAFE.  A failure is reported for the
    first failing step; commands already in flight behind it may still run,
    so only use a window when QEMU is killed on failure (never with --connect).

    ``batch`` > 1 sends runs of up to that many BATCH_SAFE steps of one
    phase as one x-batch command (the binary must have it: see
    capabilities).  QEMU stops a batch at its first failing step, so a batch
    is as safe as its steps sent one by one, also with --connect.
    """
    sender = _Sender(session, job, window, batch)
    try:
        for n, step in enumerate(job.steps, start=1):
            await sender.step(n, step)
        await sender.flush(len(job.steps) + 1)
        await _drain(sender.inflight, sender.total)
    except StepError:
        # QEMU answered (it refused a step): let the commands in flight behind it get their
        # replies, so that none arrives for a cancelled request (qemu.qmp logs each such
        # reply as an error, which a test report then shows).
        if sender.inflight:
            await asyncio.wait([sent.task for sent in sender.inflight], timeout=SETTLE_SECONDS)
        raise
    finally:
        # On failure: do not leave tasks (and their exceptions) dangling.
        for sent in sender.inflight:
            sent.task.cancel()
        if sender.inflight:
            await asyncio.gather(*(sent.task for sent in sender.inflight), return_exceptions=True)
    session.reporter.clear()


class _Sender:
    """The state of one send_all: the phase last checked, the commands in flight, the run being batched."""

    def __init__(self, session: Session[Reporter], job: Job, window: int, batch: int) -> None:
        self.session = session
        self.job = job
        self.window = window
        self.batch = batch
        self.total = len(job.steps)
        self.checked: str | None = None
        self.inflight: collections.deque[_Sent] = collections.deque()
        self.run: list[Step] = []

    async def step(self, n: int, step: Step) -> None:
        """Send step ``n`` (or add it to the run being batched), after a phase check if it needs one."""
        check = bool(self.job.check_phases and step.phase
                     and (self.checked is None or not step.phase.accepts(self.checked)))
        expected = Phase.after(step.command)
        batchable = self.batch > 1 and expected is None and step.command in BATCH_SAFE
        if batchable and not check:
            self.run.append(step)
            if len(self.run) >= self.batch:
                await self.flush(n + 1)
            return
        await self.flush(n)
        if check and step.phase:
            await _drain(self.inflight, self.total)
            await self.check_phase(n, step, step.phase, "QEMU is in phase '{actual}', but this step belongs "
                                                        "to phase '{phase}'")
        if batchable:
            self.run.append(step)  # the first of a new phase's run
            return
        if expected is not None or step.command not in PIPELINE_SAFE:
            # A phase transition, or a command that may act outside QEMU's machine
            # (object-add of a file backend, chardev-add, raw escape-hatch
            # commands), is only sent once every step before it has succeeded.
            await _drain(self.inflight, self.total)
        self.send(n, [step])
        if expected is not None or len(self.inflight) >= self.window:
            await _drain(self.inflight, self.total, keep=0 if expected is not None else self.window - 1)
        if expected is not None and self.job.check_phases:
            await self.check_phase(n, step, expected, f"after {step.command} QEMU is in phase '{{actual}}', "
                                                      "expected '{phase}'")

    async def check_phase(self, n: int, step: Step, phase: Phase, why: str) -> None:
        """StepError (``why`` with {actual} and {phase} filled) unless QEMU's phase is ``phase``."""
        actual = await self.session.phase()
        if not phase.accepts(actual):
            raise StepError(_step_failure(n, self.total, step, why.format(actual=actual, phase=phase.value)))
        self.checked = actual

    def send(self, first: int, steps: list[Step]) -> None:
        """Send ``steps`` (numbered from ``first``): one command, or an x-batch of several."""
        step = steps[0]
        if self.session.reporter.tty:  # the step's text costs a qmp-shell rendering: only for a terminal
            self.session.reporter.progress(first, self.total, step.phase.value if step.phase else None,
                                           step_text(step))
        if len(steps) > 1:
            call = self.session.call(BATCH_COMMAND, {"commands": [s.message for s in steps]})
        else:
            call = self.session.call(step.command, step.arguments)
        self.inflight.append(_Sent(first, steps, len(steps) > 1, asyncio.ensure_future(call)))

    async def flush(self, upto: int) -> None:
        """Send the run of batchable steps that ends before step ``upto``."""
        if self.run:
            self.send(upto - len(self.run), self.run[:])
            self.run.clear()
            if len(self.inflight) >= self.window:
                await _drain(self.inflight, self.total, keep=self.window - 1)


async def _drain(inflight: collections.deque[_Sent], total: int, keep: int = 0) -> None:
    """Wait for the oldest commands in flight until only ``keep`` remain; StepError on an error reply."""
    while len(inflight) > keep:
        sent = inflight[0]
        n, step = sent.first, sent.steps[0]
        try:
            reply = await sent.task
        except ExecuteError as exc:
            raise refused(_step_failure(n, total, step,
                                         f"QEMU error {exc.error_class}: {exc.error.error.desc}"), exc) from None
        except QemuError as exc:
            # QEMU died (or went silent) on this step: QMP runs commands in order, so
            # the oldest one without a reply is the one it was executing.
            what = ("QEMU did not answer this step" if isinstance(exc, QemuTimeoutError)
                    else "QEMU stopped during this step")
            if sent.batched:
                what = (f"{what} or one of the {len(sent.steps) - 1} after it (steps {n}-{n + len(sent.steps) - 1} "
                        f"were sent as one {BATCH_COMMAND})\n  hint: -v sends the steps one at a time, "
                        "which names the step")
            died = _step_failure(n, total, step, what)
            raise type(exc)(f"{died}\n{exc.message}", exc.stderr_tail) from None
        if sent.batched:
            _check_batch(sent, reply, total)
        elif step.command == BATCH_COMMAND:
            _check_own_batch(n, total, step, reply)
        else:
            failure = _answer_failure(step.command, {"return": reply})
            if failure:
                raise StepError(_step_failure(n, total, step, failure[0]),
                                sent=step.message, received={"return": reply})
        inflight.popleft()


def _answer_failure(command: str, answer: Any) -> tuple[str, str | None] | None:
    """(why, QMP error class) if ``answer``, the reply to ``command``, reports a failure, else None.

    A failure is an error reply, or a human-monitor-command whose text is
    an HMP error (``hmp_failure``): HMP answers its errors with success.
    """
    error = answer.get("error") if isinstance(answer, dict) else None
    if isinstance(error, dict):
        cls = str(error.get("class", ""))
        return f"QEMU error {cls}: {error.get('desc', '')}", cls
    if command == "human-monitor-command" and isinstance(answer, dict):
        failure = hmp_failure(answer.get("return"))
        if failure:
            return f"HMP error: {failure}", None
    return None


def _batch_failure(commands: list[str], replies: list[Any]) -> tuple[int, str, str | None, Any] | None:
    """(index, why, error class, reply) of the first failing reply of an x-batch, else None."""
    for k, answer in enumerate(replies):
        failure = _answer_failure(commands[k] if k < len(commands) else "", answer)
        if failure:
            return k, failure[0], failure[1], answer
    return None


def _check_batch(sent: _Sent, reply: Any, total: int) -> None:
    """StepError for the step whose reply in an x-batch reply is an error (QEMU ran none after it)."""
    replies = reply.get("replies") if isinstance(reply, dict) else None
    if not isinstance(replies, list):
        raise StepError(_step_failure(sent.first, total, sent.steps[0],
                                      f"{BATCH_COMMAND} answered without a list of replies: {reply!r:.200}"))
    failed = _batch_failure([s.command for s in sent.steps], replies)
    if failed is not None:
        k, why, cls, answer = failed
        step = sent.steps[k]
        raise StepError(_step_failure(sent.first + k, total, step, why),
                        sent=step.message, received=answer, error_class=cls)
    if len(replies) != len(sent.steps):
        raise StepError(_step_failure(sent.first, total, sent.steps[0],
                                      f"{BATCH_COMMAND} answered {len(replies)} replies for "
                                      f"{len(sent.steps)} commands, none of them an error"))


def _check_own_batch(n: int, total: int, step: Step, reply: Any) -> None:
    """StepError if an x-batch a QMP file sends itself has a failing command: QEMU answers it with success."""
    replies = reply.get("replies") if isinstance(reply, dict) else None
    requests = step.arguments.get("commands")
    commands = [str(r.get("execute", "")) if isinstance(r, dict) else "" for r in requests] \
        if isinstance(requests, list) else []
    failed = _batch_failure(commands, replies if isinstance(replies, list) else [])
    if failed is not None:
        k, why, cls, _ = failed
        count = len(commands) or len(replies or ())
        raise StepError(_step_failure(n, total, step, f"command {k + 1} of {count} in this {BATCH_COMMAND} "
                                                      f"failed: {why}"),
                        sent=step.message, received={"return": reply}, error_class=cls)


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
    if step.as_written != step.command:
        lines.append(f"  (the file's {step.as_written}, sent as {step.command})")
    if step.note:
        lines.append(f"  step: {step.note}")
    if step.location:
        lines.extend(step.location.describe_chain())
    lines.append(f"  {why}")
    return "\n".join(lines)
