"""The commands that build a machine in QEMU: apply (a board) and run (a QMP configuration file).

Each imports the engine (asyncio and qemu.qmp with it) when it runs; apply
imports the planner only when the plan is not in the cache, and starts QEMU
before it imports the engine (apply.spawn.start_early).
"""

from __future__ import annotations

from pathlib import Path

import click

from .options import (EXIT_CODES, FilePath, boot_files, boot_flags, boot_options, check_inputs, parse_sets,
                      print_notes, qemu_options, validate_serial)


@click.command("apply", epilog=EXIT_CODES)
@click.argument("board", type=FilePath(path_type=Path, dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="NAME=VALUE",
              help="Override a board parameter (repeatable).")
@click.option("--firmware", multiple=True, type=FilePath(path_type=Path, dir_okay=False, exists=True),
              help="Load this ELF into the machine (repeatable).")
@boot_flags
@qemu_options
def apply_cmd(board: Path, overrides: tuple[str, ...], firmware: tuple[Path, ...], bios: str | None,
              kernel: str | None, initrd: str | None, append: str | None, dtb: str | None, qemu: str | None,
              serial: str | None, paused: bool, detach: bool, connect: str | None, timeout: float,
              verbose: bool, allow_host_access: bool) -> None:
    """Build BOARD's machine in QEMU over QMP, phase by phase, verify it, and run the guest.

    QEMU starts with the board's arguments and -preconfig, QMP on a unix socket
    in a private directory; the guest's console appears on the terminal until
    the guest powers off or you press Ctrl-C.  Any failure stops the QEMU it
    started and removes its directory.
    """
    from ..plan.pipeline import load_plan

    check_inputs(firmware, "--firmware")
    boot = boot_options(bios, kernel, initrd, append, dtb)
    validate_serial(serial, [board, *firmware, *boot_files(boot)])
    plan = load_plan(board, parse_sets(overrides), tuple(f.resolve() for f in firmware), cache=True,
                     allow_host_access=allow_host_access, boot=boot)
    print_notes(plan.notes)  # as plan does: a check that could not be made, a CPU that starts nowhere
    from ..apply.job import Options, plan_job
    from ..apply.spawn import start_early

    opts = Options(qemu=qemu, serial=serial, paused=paused, detach=detach, connect=connect,
                   timeout=timeout, verbose=verbose, allow_host_access=allow_host_access)
    job = plan_job(plan)
    # QEMU starts as soon as its command line is known: its own start-up then overlaps
    # the import of the engine, asyncio and qemu.qmp (about 30 ms), which follows.
    with start_early(job, opts) as started:
        from ..apply.engine import drive, run_async

        run_async(drive(job, opts, started))


@click.command("run", epilog=EXIT_CODES, context_settings={"ignore_unknown_options": True})
@click.argument("file", type=FilePath(path_type=Path, dir_okay=False, exists=True))
@click.argument("qemu_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- QEMU_ARGS...]")
@click.option("--dialect", type=click.Choice(["auto", "machinedesc", "v4"]), default="auto", show_default=True,
              help="How to read FILE: machinedesc's own commands, or the v4 QMP-configuration series "
                   "(GreenSocs' qemu-qmp-machines; docs/apply.md, \"Dialects\"); auto detects it.")
@qemu_options
def run_cmd(file: Path, qemu_args: tuple[str, ...], dialect: str, qemu: str | None, serial: str | None,
            paused: bool, detach: bool, connect: str | None, timeout: float, verbose: bool,
            allow_host_access: bool) -> None:
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

    Files in the v4 dialect of the QMP-configuration series (no
    x-machine-init, sysbus-mmio-map, /machine ram-addr with -m, hex numbers)
    are read too; run says on stderr which dialect it used.
    """
    validate_serial(serial, [file])
    from ..apply.configurator import run
    from ..apply.job import Options

    opts = Options(qemu=qemu, serial=serial, paused=paused, detach=detach, connect=connect,
                   timeout=timeout, verbose=verbose, extra_args=qemu_args, allow_host_access=allow_host_access)
    run(file, opts, None if dialect == "auto" else dialect)
