"""The `apply` and `run` commands (click); machinedesc.cli registers them on its group.

Errors are raised, not printed: ``machinedesc.cli.main`` prints ``str(err)``
and exits with ``err.exit_code`` for every MachinedescError.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import click

from .errors import UsageError, printable

EXIT_CODES = """\b
Exit status:
  0    the machine was built and the guest powered off (or --detach/--connect)
  1    internal error (a bug: please report the traceback), or a
       broken installation (the message says what to install)
  2    invalid board, QMP file or usage
  3    QEMU lacks a capability (stock QEMU: run `machinedesc qemu build`)
  4    a step failed, or the built machine differs from the board
  5    QEMU died or stopped answering (timeout)
  6    the guest's console could not be written (disk full, I/O error)
  130  interrupted (Ctrl-C); QEMU was shut down
"""

_SERIAL_HELP = ("Where the board's console chardev goes: stdio (the terminal, default), "
                "file:PATH, socket:PATH (a listening unix socket) or none.")


def _check_timeout(ctx: click.Context, param: click.Parameter, value: float) -> float:
    # nan passes every `<= 0` test and inf never times out: refuse both here, before any work.
    if not (math.isfinite(value) and value > 0):
        raise click.BadParameter(f"must be a positive number of seconds, not {value}", ctx, param)
    return value


def _common(func: click.decorators.FC) -> click.decorators.FC:
    for option in reversed([
        click.option("--qemu", "qemu", metavar="PATH",
                     help="QEMU binary (default: $MACHINEDESC_QEMU_<SYSTEM>, $MACHINEDESC_QEMU, "
                          "the patched build, then PATH)."),
        click.option("--serial", metavar="SPEC", help=_SERIAL_HELP),
        click.option("--paused", is_flag=True, help="Leave the CPUs stopped after building (-S)."),
        click.option("--detach", is_flag=True,
                     help="Leave QEMU running in the background; print its pid and QMP socket."),
        click.option("--connect", metavar="SOCKET",
                     help="Build in a QEMU you started with -preconfig and -qmp unix:SOCKET,server=on,wait=on "
                          "(it is never killed)."),
        click.option("--timeout", type=float, default=30.0, show_default=True, metavar="SECONDS",
                     callback=_check_timeout,
                     help="How long to wait for QEMU to start or answer one command; a QEMU that stops "
                          "answering is given up after that long, wherever it happens."),
        click.option("-v", "--verbose", is_flag=True, help="Echo every QMP command and reply on stderr."),
        click.option("--allow-host-access", is_flag=True,
                     help="Let the board or file use QMP commands, backends and QEMU options that touch the "
                          "host (host files, sockets, devices, network; docs/format.md). Only for files you trust."),
    ]):
        func = option(func)
    return func


def parse_sets(items: tuple[str, ...]) -> dict[str, str]:
    """``--set name=value`` options as a dict; raises UsageError when malformed."""
    values: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise UsageError(printable(f"--set expects NAME=VALUE, got '{item}'"))
        values[name] = value
    return values


def _validate_serial(serial: str | None, inputs: Sequence[Path] = ()) -> None:
    """Refuse a malformed --serial, and a console file that is one of the ``inputs`` (it would be emptied)."""
    if serial is None:
        return
    kind, sep, target = serial.partition(":")
    if kind in ("stdio", "none") and not sep:
        return
    if kind in ("file", "socket") and target:
        refuse_overwriting(Path(target), inputs, "--serial")
        return
    raise UsageError(f"invalid --serial '{serial}': use stdio, file:PATH, socket:PATH or none")


def refuse_overwriting(output: Path, inputs: Sequence[Path], option: str) -> None:
    """UsageError (exit 2) when ``output`` is one of the files the command reads."""
    from .storage import same_file

    source = same_file(output, inputs)
    if source is not None:
        raise UsageError(printable(f"machinedesc: {option} {output} is {source}, an input of this command: "
                                   "writing it would destroy it; choose another file"))


def check_inputs(paths: Sequence[Path], option: str) -> None:
    """UsageError (exit 2) for an input that is not a regular file (a FIFO, a device, a directory)."""
    from .storage import not_a_regular_file

    for path in paths:
        why = not_a_regular_file(path)
        if why is not None:
            raise UsageError(printable(f"machinedesc: {option} {path}: {why}"))


@click.command("apply", epilog=EXIT_CODES)
@click.argument("board", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="NAME=VALUE",
              help="Override a board parameter (repeatable).")
@click.option("--firmware", multiple=True, type=click.Path(path_type=Path, dir_okay=False, exists=True),
              help="Load this ELF into the machine (repeatable).")
@_common
def apply_cmd(board: Path, overrides: tuple[str, ...], firmware: tuple[Path, ...], qemu: str | None,
              serial: str | None, paused: bool, detach: bool, connect: str | None, timeout: float,
              verbose: bool, allow_host_access: bool) -> None:
    """Build BOARD's machine in QEMU over QMP, phase by phase, verify it, and run the guest.

    QEMU starts with the board's arguments and -preconfig, QMP on a unix socket
    in a private directory; the guest's console appears on the terminal until
    the guest powers off or you press Ctrl-C.  Any failure stops the QEMU it
    started and removes its directory.
    """
    # Imported here: asyncio and qemu.qmp cost ~50 ms that validate/plan need not pay.
    from .apply.engine import Options, apply_plan
    from .plan.pipeline import load_plan

    check_inputs(firmware, "--firmware")
    _validate_serial(serial, [board, *firmware])
    plan = load_plan(board, parse_sets(overrides), tuple(f.resolve() for f in firmware), cache=True,
                     allow_host_access=allow_host_access)
    opts = Options(qemu=qemu, serial=serial, paused=paused, detach=detach, connect=connect,
                   timeout=timeout, verbose=verbose, allow_host_access=allow_host_access)
    apply_plan(plan, opts)


@click.command("run", epilog=EXIT_CODES, context_settings={"ignore_unknown_options": True})
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.argument("qemu_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- QEMU_ARGS...]")
@_common
def run_cmd(file: Path, qemu_args: tuple[str, ...], qemu: str | None, serial: str | None, paused: bool,
            detach: bool, connect: str | None, timeout: float, verbose: bool, allow_host_access: bool) -> None:
    """Send a QMP configuration FILE (as written by `machinedesc plan`) to QEMU, line by line.

    QEMU is started from the command line in the file's `# qemu:` header (plus
    QEMU_ARGS after `--`), or reached with --connect.  Stops at the first error
    with the file's line number.

    A QMP file is a program: its `# qemu:` header names the command run starts.
    Run only files you trust.  From the header, run starts only a qemu-system-*
    binary (looked up like apply's; --qemu PATH names another) and, without
    --allow-host-access, refuses header options and commands that touch the
    host (docs/format.md).  Options that detach QEMU (-daemonize, -pidfile,
    -run-with) are refused: use --detach.
    """
    from .apply.configurator import run
    from .apply.engine import Options

    _validate_serial(serial, [file])
    opts = Options(qemu=qemu, serial=serial, paused=paused, detach=detach, connect=connect,
                   timeout=timeout, verbose=verbose, extra_args=qemu_args, allow_host_access=allow_host_access)
    run(file, opts)


__all__ = ["EXIT_CODES", "apply_cmd", "run_cmd"]
