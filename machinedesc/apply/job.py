"""What apply and run build, and how: ``Job`` (steps, checks, QEMU command line) and ``Options`` (the flags).

``plan_job`` turns a board's ``Plan`` into a Job (``configurator.file_job``
does the same for a QMP file); ``Options.validate`` refuses flag
combinations that make no sense, before anything starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO, TextIO

from ..errors import UsageError
from ..plan.steps import Check, Plan, Step


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
    """What to build: the steps, the checks afterwards, and how to start QEMU."""

    title: str
    steps: Sequence[Step]
    system: str | None
    qemu_args: Sequence[str]
    console_ids: Sequence[str]
    checks: Sequence[Check] = ()
    check_phases: bool = True
    binary: str | None = None
    extra_commands: frozenset[str] = field(default_factory=frozenset)


def plan_job(plan: Plan) -> Job:
    """The Job for a board's Plan: its steps, its checks, its QEMU arguments and console."""
    consoles = [cid for cid, backend in plan.chardevs.items() if backend == "stdio"]
    if not consoles and plan.chardevs:
        consoles = [next(iter(plan.chardevs))]
    return Job(
        title=f"board '{plan.name}' ({plan.board})",
        steps=plan.steps,
        system=plan.system,
        qemu_args=plan.qemu_args,
        console_ids=consoles,
        checks=plan.checks,
        check_phases=True,
        extra_commands=frozenset({"cont"}),
    )
