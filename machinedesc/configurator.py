"""The QMP configurator (the seed RFC's script): send a QMP configuration file's commands to QEMU.

``run`` reads a file in the format of ``machinedesc plan`` (see qmpfile),
starts QEMU from the command line recorded in its ``# qemu:`` header (plus
extra arguments) or connects to a running one, and then behaves like apply:
capability probe, phase checks where the file marks phases, one command at a
time, stop at the first error naming the file's line (exit 4), cleanup.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from .apply import Action, Job, Options, drive, run_async
from .errors import UsageError
from .qemu import QemuNotFoundError, find_binary, stdio_chardevs
from .qmpfile import QmpFile, load

def file_job(qmp: QmpFile, opts: Options) -> Job:
    """The Job for a parsed file; raises UsageError when QEMU cannot be started from it."""
    actions = [Action(c.command, c.arguments, c.phase, c.location) for c in qmp.commands]
    job = Job(
        title=qmp.path,
        actions=actions,
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


def run(path: Path, opts: Options) -> int:
    """Apply the QMP configuration file at ``path``; returns 0.

    Raises QmpFileError (2) for a malformed file, UsageError (2), and the
    errors of ``apply.drive`` (3, 4, 5, 130+).
    """
    opts.validate()
    job = file_job(load(path), opts)
    return run_async(drive(job, opts))


__all__ = ["file_job", "run"]
