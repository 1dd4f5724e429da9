"""The command line: validate, plan, dtb, apply, run, list, show, graph, diff, schema, qemu build/path/introspect;
errors become exit codes in ``main``.

The commands live in ``machinedesc.commands`` (one module per family), each
importing what it uses when it runs; this module puts them under one click
group. Commands raise errors rather than print them: ``main`` prints
``str(err)`` and exits with ``err.exit_code`` for every MachinedescError, in
one place.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import traceback
from typing import NoReturn

import click

from . import __version__
from .commands import board, importing, machine, qemu_tools, views
from .commands.options import EXIT_CODES
from .errors import Exit, MachinedescError


@click.group(epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="machinedesc")
def cli() -> None:
    """Declarative YAML machine descriptions for QEMU, built over QMP.

    A board (boards/*.yaml) lists clusters, CPUs, memories, peripherals, the
    MMIO map and IRQ wiring; `plan` prints the QMP commands that build it
    phase by phase, `apply` builds it in a real QEMU, `dtb` writes the
    guest's device tree (docs/).
    """


for _command in (board.validate, board.plan, board.dtb, machine.apply_cmd, machine.run_cmd,
                 importing.import_qmp_cmd, importing.import_dtb_cmd, views.list_cmd, views.show, views.graph,
                 views.diff, board.schema, qemu_tools.qemu):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point: run the CLI and turn errors into messages and exit codes, in one place."""
    try:
        cli.main(args=argv, prog_name="machinedesc", standalone_mode=False)
        # Flushed here, not at interpreter exit, so that a failed write is ours to report.
        sys.stdout.flush()
    except SystemExit:
        raise
    except BaseException as err:  # noqa: BLE001 - the one place errors become exit codes
        sys.exit(exit_status(err))
    sys.exit(Exit.OK)


def exit_status(err: BaseException) -> int:
    """Show ``err`` (an exception a command raised) on stderr and return its exit status.

    The one mapping from errors to exit codes (the table is machinedesc.errors.Exit):
    a MachinedescError's message and ``exit_code``; click's usage errors 2;
    Ctrl-C 130; a failed write of standard output 6 (a reader that left, 0);
    anything else is a bug: its traceback and 1.
    """
    if isinstance(err, click.exceptions.Exit):
        return err.exit_code
    if isinstance(err, click.ClickException):
        err.show()
        return err.exit_code
    if isinstance(err, click.exceptions.Abort):
        return Exit.INTERRUPTED
    if isinstance(err, MachinedescError):
        print(str(err), file=sys.stderr)
        return err.exit_code
    if isinstance(err, KeyboardInterrupt):
        print("interrupted", file=sys.stderr)
        return Exit.INTERRUPTED
    if isinstance(err, OSError) and _stdout_failed(err):
        _silence_stdout()
        if err.errno == errno.EPIPE:
            return Exit.OK  # the reader went away (`| head`): quiet, as click itself treats it
        print(f"machinedesc: cannot write standard output: {err.strerror}", file=sys.stderr)
        return Exit.OUTPUT
    traceback.print_exception(err)
    print("machinedesc: internal error (a bug): please report the traceback above", file=sys.stderr)
    return Exit.INTERNAL


def _stdout_failed(err: OSError) -> bool:
    """Whether ``err`` is a failed write of standard output.

    Errors of the files machinedesc opens carry the file's name (and are
    reported where they happen); a write error without one that escaped to
    here came from printing.
    """
    return err.filename is None and err.errno in (errno.EPIPE, errno.ENOSPC, errno.EIO, errno.EDQUOT, errno.EFBIG)


def _silence_stdout() -> None:
    # What is still buffered would fail again when Python flushes it at exit.
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


if __name__ == "__main__":
    main()
