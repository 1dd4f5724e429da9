"""The QMP configurator (the seed RFC's script): send a QMP configuration file's commands to QEMU.

``run`` reads a file in the format of ``machinedesc plan`` (see qmpfile),
starts QEMU from the command line recorded in its ``# qemu:`` header (plus
extra arguments) or connects to a running one, and then behaves like apply:
capability probe, phase checks where the file marks phases, one command at a
time, stop at the first error naming the file's line (exit 4), cleanup.

A QMP file names a program to run: only a ``qemu-system-*`` binary is started
from its header (``--qemu`` names any other), and, unless
``--allow-host-access``, its header options and commands are held to the same
host-access policy as a board (machinedesc.board.safety).
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import sys
from pathlib import Path

from ..board import safety
from ..errors import QemuNotFoundError, QmpFileError, UsageError
from ..plan import qmpdialect
from ..plan.qmpfile import QmpFile, load
from ..qemu.binary import find_binary
from ..qemu.chardevs import stdio_chardevs
from ..source import SourceLocation
from .engine import drive, run_async
from .job import DETACH_HINT, Job, Options, detaching_option

_SYSTEM = re.compile(r"[a-z0-9_]+")
_BINARY = re.compile(r"qemu-system-[a-z0-9_]+")


def check_file(qmp: QmpFile, opts: Options) -> None:
    """Raise QmpFileError (exit 2) at the line of a header or command that ``run`` refuses.

    The ``# system:`` header must be a system name; the header's program must
    be a ``qemu-system-*`` binary unless --qemu replaces it; its options may
    not detach QEMU; without --allow-host-access no header option or command
    may touch the host.
    """
    system = qmp.header.get("system")
    if system is not None and not _SYSTEM.fullmatch(system):
        raise QmpFileError(qmp.header_location("system"), f"invalid system '{safety.escape_control(system)}'",
                           "a QEMU system name such as riscv64 or aarch64")
    argv = qmp.qemu_argv if not opts.connect else None
    if argv is not None:
        _check_header(qmp, argv, opts)
    if opts.allow_host_access:
        return
    for cmd in qmp.commands:
        found = safety.command_problem(cmd.command, cmd.arguments)
        if found:
            raise QmpFileError(cmd.location or SourceLocation(qmp.path, 0, 0), found[0], safety.HINT)


def _check_header(qmp: QmpFile, argv: list[str], opts: Options) -> None:
    where = qmp.header_location("qemu")
    if not opts.qemu and (not argv or not _BINARY.fullmatch(Path(argv[0]).name)):
        shown = safety.escape_control(argv[0]) if argv else ""
        raise QmpFileError(where, f"the '# qemu:' header would run '{shown}', which is not a qemu-system-* binary",
                           "a QMP file is a program: run only starts QEMU from it; give --qemu PATH to "
                           "run another binary you trust")
    found = detaching_option(argv[1:])
    if found:
        raise QmpFileError(where, f"QEMU option '{found[0]}' is not allowed: {found[1]}", DETACH_HINT)
    why = None if opts.allow_host_access else safety.check_qemu_argv(argv[1:])
    if why:
        raise QmpFileError(where, why, safety.HINT)


def file_job(qmp: QmpFile, opts: Options) -> Job:
    """The Job for a parsed file; raises UsageError when QEMU cannot be started from it,
    QmpFileError for what ``check_file`` refuses."""
    check_file(qmp, opts)
    job = Job(
        title=qmp.path,
        steps=qmp.commands,
        system=qmp.system,
        qemu_args=(),
        console_ids=(),
        check_phases=any(c.phase for c in qmp.commands),
        extra_commands=frozenset() if opts.connect else frozenset({"cont"}),
    )
    if opts.connect:
        return job
    argv = qmp.qemu_argv
    if not argv:
        if not opts.qemu:
            raise UsageError(f"{qmp.path}: no '# qemu: ...' header line to start QEMU from; add one, "
                             "give --qemu PATH [-- QEMU_ARGS...], or use --connect SOCKET with a QEMU "
                             "you started with -preconfig")
        # No header: the binary and the arguments after -- are the whole command line.
        argv = [opts.qemu]
    args = [a for a in argv[1:] if a not in ("-preconfig", "--preconfig")]
    job.qemu_args = args
    job.console_ids = stdio_chardevs(args)
    if qmp.system is not None:
        job.binary = str(find_binary(qmp.system, opts.qemu))
    else:
        # No system to look the binary up by: --qemu, else the header's binary as written.
        job.binary = str(_as_written(opts.qemu or argv[0]))
    return job


def _as_written(name: str) -> Path:
    """A binary given as a path, or a name looked up on PATH; raises QemuNotFoundError."""
    if "/" in name:
        return Path(name)
    found = shutil.which(name)
    if found is None:
        raise QemuNotFoundError(f"{name} not found on PATH")
    return Path(found)


def read_dialect(qmp: QmpFile, opts: Options, dialect: str | None) -> tuple[QmpFile, Options]:
    """The file in machinedesc's dialect, and the options to run it with (plan.qmpdialect).

    ``dialect`` forces one (None: detected); says on stderr which one is used
    when it is not machinedesc's own found by detection (or with -v): run stays
    quiet in pipes for its own files.
    A v4 file takes ``-m`` off the QEMU arguments (its RAM becomes a device)
    and runs on ``-M none`` unless the arguments name a machine.
    """
    found = qmpdialect.detect(qmp)
    used = found if dialect in (None, found.name) else qmpdialect.Dialect(str(dialect), "--dialect")
    if used.name != qmpdialect.MACHINEDESC or dialect is not None or opts.verbose:
        print(used.note(qmp.path), file=opts.stderr or sys.stderr)
    if used.name != qmpdialect.V4:
        return qmp, opts
    size, extra = qmpdialect.ram_size(opts.extra_args)
    if not any(a in ("-M", "-machine", "--machine") or a.startswith("-machine=") for a in [*extra, *(
            qmp.qemu_argv or [])]):
        extra = ["-M", "none", *extra]
    return qmpdialect.translate(qmp, size), dataclasses.replace(opts, extra_args=tuple(extra))


def run(path: Path, opts: Options, dialect: str | None = None) -> int:
    """Apply the QMP configuration file at ``path``; returns 0.

    ``dialect`` is ``machinedesc``, ``v4`` or None (detected from the file).
    Raises QmpFileError (2) for a malformed file, UsageError (2), and the
    errors of ``engine.drive`` (3, 4, 5, 130+).
    """
    opts.validate()
    qmp, opts = read_dialect(load(path), opts, dialect)
    job = file_job(qmp, opts)
    return run_async(drive(job, opts))


__all__ = ["file_job", "run"]
