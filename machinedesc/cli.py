"""The command line: validate, plan, dtb, apply, run, list, show, graph, diff, schema, qemu build/path/introspect;
errors become exit codes in ``main``.

Commands raise errors rather than print them: ``main`` prints ``str(err)``
and exits with ``err.exit_code`` for every MachinedescError, in one place.
"""

from __future__ import annotations

import contextlib
import errno
import math
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from . import __version__
from .errors import (BoardError, Exit, MachinedescError, QemuNotFoundError, UsageError, exit_table, printable,
                     printable_lines)
from .plan.pipeline import load_board, load_plan
from .qemu import build as qemu_build
from .storage import write_file

#: The exit-status table of --help, from machinedesc.errors.Exit.
EXIT_CODES = exit_table()

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


def _boot_options(func: click.decorators.FC) -> click.decorators.FC:
    """--bios, --kernel, --initrd, --append, --dtb: QEMU's names, over the board's ``boot:`` (docs/boot.md)."""
    file = click.Path(path_type=str, dir_okay=False)
    for option in reversed([
        click.option("--bios", metavar="FILE", type=file,
                     help="Firmware (ELF or raw: start of RAM on RISC-V, first flash on Arm), e.g. fw_jump.bin."),
        click.option("--kernel", metavar="FILE", type=file,
                     help="Kernel or next stage (ELF, raw, Linux Image, gzip Image), placed as QEMU's virt does."),
        click.option("--initrd", metavar="FILE", type=file, help="Initial RAM disk (needs --kernel)."),
        click.option("--append", metavar="ARGS", help="Kernel command line (the device tree's /chosen bootargs)."),
        click.option("--dtb", metavar="auto|FILE|none",
                     help="The guest's device tree: generated from the board (auto, default), a .dtb FILE, or none."),
    ]):
        func = option(func)
    return func


def boot_options(bios: str | None, kernel: str | None, initrd: str | None, append: str | None,
                 dtb: str | None) -> dict[str, str]:
    """The boot options given on the command line, by name; files must be regular files (exit 2)."""
    given = {k: v for k, v in (("bios", bios), ("kernel", kernel), ("initrd", initrd), ("append", append),
                                ("dtb", dtb)) if v is not None}
    for key, value in given.items():
        if key in ("bios", "kernel", "initrd") or (key == "dtb" and value not in ("auto", "none")):
            check_inputs([Path(value)], f"--{key}")
    return given


def _boot_files(boot: dict[str, str]) -> list[Path]:
    return [Path(v) for k, v in boot.items() if k != "append" and v not in ("auto", "none")]


class FilePath(click.Path):
    """click.Path that refuses an empty name (``''`` would be read as ``.``, the working directory)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value == "":
            self.fail("an empty file name: name a file, e.g. boards/soc.yaml", param, ctx)
        return super().convert(value, param, ctx)



def _output_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``-o/--output FILE``; ``-o -`` is standard output (the option's value is then None)."""
    return click.option("-o", "--output", type=FilePath(path_type=Path, dir_okay=False, allow_dash=True),
                        callback=lambda _ctx, _param, value: None if value == Path("-") else value,
                        help=help_text)


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
    """Refuse a malformed --serial (qemu.chardevs.parse_serial), and a console file that is one of the
    ``inputs`` (it would be emptied)."""
    if serial is None:
        return
    from .qemu.chardevs import parse_serial

    try:
        kind, target = parse_serial(serial)
    except ValueError as err:
        raise UsageError(printable(str(err))) from None
    if kind in ("file", "socket"):
        refuse_overwriting(Path(target), inputs, "--serial")


def refuse_overwriting(output: Path, inputs: Sequence[Path], option: str) -> None:
    """UsageError (exit 2) when ``output`` is one of the files the command reads."""
    from .storage import same_file

    source = same_file(output, inputs)
    if source is not None:
        raise UsageError(printable(f"machinedesc: {option} {output} is {source}, an input of this command: "
                                   "writing it would destroy it; choose another file"))


def check_inputs(paths: Sequence[Path], option: str) -> None:
    """UsageError (exit 2) for an input that is not a regular file (a FIFO, a device, a directory)."""
    from .storage import FileProblem, check_regular

    for path in paths:
        try:
            check_regular(path)
        except FileProblem as err:
            raise UsageError(printable(f"machinedesc: {option} {path}: {err.message}")) from None


_CATALOG_HELP = "Directory that includes may not leave (default: the board's directory)."
_allow_host_access = click.option(
    "--allow-host-access", is_flag=True,
    help="Let the board run QMP commands and use backends that touch the host (host files, "
         "sockets, devices, network; the list is in docs/format.md). Only for boards you trust.")


@click.group(epilog=EXIT_CODES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="machinedesc")
def cli() -> None:
    """Declarative YAML machine descriptions for QEMU, built over QMP.

    A board (boards/*.yaml) lists clusters, CPUs, memories, peripherals, the
    MMIO map and IRQ wiring; `plan` prints the QMP commands that build it
    phase by phase, `apply` builds it in a real QEMU, `dtb` writes the
    guest's device tree (docs/).
    """


@cli.command()
@click.argument("boards", nargs=-1, required=True, type=FilePath(path_type=Path, dir_okay=False))
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Override a board parameter.")
@click.option("--catalog", type=click.Path(path_type=Path, file_okay=False), help=_CATALOG_HELP)
@_allow_host_access
def validate(boards: tuple[Path, ...], sets: tuple[str, ...], catalog: Path | None, allow_host_access: bool) -> None:
    """Check BOARDS and print every error (file:line:col), exit 2 if any."""
    overrides = parse_sets(sets)
    problems = []
    noted: set[str] = set()
    for board in boards:
        try:
            # The planner's graph stage finds ordering cycles: validate runs it too.
            result = load_plan(board, overrides, (), catalog, cache=True, allow_host_access=allow_host_access)
            # A note that is not about one file's line (no type database for a system) is said once.
            _print_notes([n for n in result.notes if n not in noted])
            noted.update(n for n in result.notes if n.startswith("note: no type database"))
            click.echo(printable(f"{board}: ok"))  # a file name may hold control characters
        except BoardError as err:
            problems.extend(err.problems)
    if problems:
        raise BoardError(problems)


def _print_notes(notes: Sequence[str]) -> None:
    """What validation could not check (a board file's own words, made printable), on stderr."""
    for line in notes:
        click.echo(printable(line), err=True)


@cli.command()
@click.argument("board", type=FilePath(path_type=Path, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["qmp", "json"]), default="qmp", show_default=True,
              help="qmp: the QMP configuration file (qmp-shell syntax); json: one QMP message per line.")
@_output_option("Write the plan here instead of stdout ('-': stdout; a regular file is replaced atomically "
                "and keeps its mode).")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Override a board parameter.")
@click.option("--firmware", multiple=True, type=FilePath(path_type=Path, dir_okay=False),
              help="Add a step loading this ELF (repeatable).")
@click.option("--catalog", type=click.Path(path_type=Path, file_okay=False), help=_CATALOG_HELP)
@_boot_options
@_allow_host_access
def plan(board: Path, fmt: str, output: Path | None, sets: tuple[str, ...], firmware: tuple[Path, ...],
         catalog: Path | None, bios: str | None, kernel: str | None, initrd: str | None, append: str | None,
         dtb: str | None, allow_host_access: bool) -> None:
    """Print the ordered QMP commands that build BOARD, per machine-init phase (a dry run).

    With a bios or kernel (options or the board's boot: section) the header
    says where each image, the device tree and the reset code go (docs/boot.md).
    """
    check_inputs(firmware, "--firmware")
    boot = boot_options(bios, kernel, initrd, append, dtb)
    if output is not None:
        refuse_overwriting(output, [board, *firmware, *_boot_files(boot)], "-o")
    result = load_plan(board, parse_sets(sets), firmware, catalog, cache=True, allow_host_access=allow_host_access,
                       boot=boot)
    _print_notes(result.notes)
    from .plan.render import render_json, render_qmp  # here: `apply` does not need the QMP file syntax

    text = render_qmp(result) if fmt == "qmp" else render_json(result)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        # A regular file is replaced atomically (no half plan), a device such as
        # /dev/null is written in place, a symlink is written through.
        write_file(output, text.encode("utf-8"))
    except OSError as exc:
        raise UsageError(f"machinedesc: cannot write {output}: {exc.strerror or exc}") from None


@cli.command()
@click.argument("board", type=FilePath(path_type=Path, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["dtb", "dts"]), default="dtb", show_default=True,
              help="dtb: the flattened blob firmware reads; dts: the same tree as source text.")
@_output_option("Write it here instead of stdout (a regular file is replaced atomically).")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Override a board parameter.")
@click.option("--catalog", type=click.Path(path_type=Path, file_okay=False), help=_CATALOG_HELP)
@click.option("-v", "--verbose", is_flag=True, help="List on stderr what was left out of the tree, and why.")
@click.option("--check", is_flag=True,
              help="Also compile the tree with dtc (device-tree-compiler): exit 2 if dtc has anything to say.")
@_allow_host_access
def dtb(board: Path, fmt: str, output: Path | None, sets: tuple[str, ...], catalog: Path | None,
        verbose: bool, check: bool, allow_host_access: bool) -> None:
    """Print the guest's device tree generated from BOARD (docs/devicetree.md).

    CPUs, memory, a node per device whose type has a binding, interrupts from
    the wiring, /chosen; the same board gives the same bytes.
    """
    from .devicetree.generate import generate
    from .plan.pipeline import load_board

    if output is not None:
        refuse_overwriting(output, [board], "-o")
    elif fmt == "dtb" and sys.stdout.isatty():
        raise UsageError("machinedesc: a DTB is binary: give -o FILE, redirect the output, or use --format dts")
    tree = generate(load_board(board, parse_sets(sets), catalog, allow_host_access=allow_host_access))
    if verbose:
        for note in tree.notes:
            click.echo(printable(f"machinedesc: dtb: {note}"), err=True)
    if check:
        from .devicetree.dtc import compile_dts

        result = compile_dts(tree.to_dts())
        if result.messages or result.returncode:
            raise UsageError(printable_lines(
                f"machinedesc: dtc on {board}'s device tree:\n{result.messages.rstrip()}"))
    data = tree.to_dtb() if fmt == "dtb" else tree.to_dts().encode()
    if output is None:
        sys.stdout.buffer.write(data)
        return
    try:
        write_file(output, data)
    except OSError as exc:
        raise UsageError(f"machinedesc: cannot write {output}: {exc.strerror or exc}") from None


@cli.command("apply", epilog=EXIT_CODES)
@click.argument("board", type=FilePath(path_type=Path, dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="NAME=VALUE",
              help="Override a board parameter (repeatable).")
@click.option("--firmware", multiple=True, type=FilePath(path_type=Path, dir_okay=False, exists=True),
              help="Load this ELF into the machine (repeatable).")
@_boot_options
@_common
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
    # Imported here: asyncio and qemu.qmp cost ~50 ms that validate/plan need not pay.
    from .apply.engine import apply_plan
    from .apply.job import Options

    check_inputs(firmware, "--firmware")
    boot = boot_options(bios, kernel, initrd, append, dtb)
    _validate_serial(serial, [board, *firmware, *_boot_files(boot)])
    plan = load_plan(board, parse_sets(overrides), tuple(f.resolve() for f in firmware), cache=True,
                     allow_host_access=allow_host_access, boot=boot)
    _print_notes(plan.notes)  # as plan does: a check that could not be made, a CPU that starts nowhere
    opts = Options(qemu=qemu, serial=serial, paused=paused, detach=detach, connect=connect,
                   timeout=timeout, verbose=verbose, allow_host_access=allow_host_access)
    apply_plan(plan, opts)


@cli.command("run", epilog=EXIT_CODES, context_settings={"ignore_unknown_options": True})
@click.argument("file", type=FilePath(path_type=Path, dir_okay=False, exists=True))
@click.argument("qemu_args", nargs=-1, type=click.UNPROCESSED, metavar="[-- QEMU_ARGS...]")
@click.option("--dialect", type=click.Choice(["auto", "machinedesc", "v4"]), default="auto", show_default=True,
              help="How to read FILE: machinedesc's own commands, or the v4 QMP-configuration series "
                   "(GreenSocs' qemu-qmp-machines; docs/apply.md, \"Dialects\"); auto detects it.")
@_common
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
    from .apply.configurator import run
    from .apply.job import Options

    _validate_serial(serial, [file])
    opts = Options(qemu=qemu, serial=serial, paused=paused, detach=detach, connect=connect,
                   timeout=timeout, verbose=verbose, extra_args=qemu_args, allow_host_access=allow_host_access)
    run(file, opts, None if dialect == "auto" else dialect)


@cli.command("import-qmp")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The board file to write (replaced atomically).")
@click.option("--dialect", type=click.Choice(["auto", "machinedesc", "v4"]), default="auto", show_default=True,
              help="How to read FILE (as for run).")
@click.option("--system", help="qemu-system-X the board is for (default: the file's header, else guessed).")
@click.option("--ram-size", metavar="SIZE", help="RAM size for a v4 file's /machine ram-addr (as -m: 64K, 128M).")
def import_qmp_cmd(file: Path, output: Path, dialect: str, system: str | None, ram_size: str | None) -> None:
    """Write a board that builds the machine of QMP configuration FILE, with a coverage report on stderr.

    Devices with their MMIO map become components, output-to-input qom-sets
    become wires, a riscv.hart_array a cluster of CPUs; runs of wires (one
    per hart, or line by line) and of numbered look-alike devices are folded
    into count: and range entries; loaders are left out (give the image to apply --firmware); every
    other command is kept as a raw qmp: entry. The report counts each kind.
    """
    from .plan import qmpdialect
    from .plan.qmpfile import load
    from .plan.qmpimport import import_qmp

    refuse_overwriting(output, [file], "-o")
    qmp = load(file)
    found = qmpdialect.detect(qmp)
    if (found.name if dialect == "auto" else dialect) == qmpdialect.V4:
        size, _ = qmpdialect.ram_size(["-m", ram_size] if ram_size else [])
        qmp = qmpdialect.translate(qmp, size)
    result = import_qmp(qmp, system, output.stem)
    try:
        write_file(output, result.yaml.encode("utf-8"))
    except OSError as exc:
        raise UsageError(f"machinedesc: cannot write {output}: {exc.strerror or exc}") from None
    click.echo("\n".join(printable(line) for line in result.report), err=True)  # the file's words, made safe



@cli.command("import-dtb")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("-o", "--output", type=FilePath(path_type=Path, dir_okay=False, allow_dash=True), required=True,
              help="The board file to write (replaced atomically); '-': standard output.")
def import_dtb_cmd(file: Path, output: Path) -> None:
    """Write a board that builds the machine of device tree FILE (a .dtb, or .dts source), with a coverage
    report on stderr.

    The binding table in reverse (docs/devicetree.md, "Importing a device
    tree"): compatible -> QEMU type, reg -> mmio, interrupts and
    interrupts-extended -> wiring, /cpus and cpu-map -> clusters of CPUs,
    /memory -> RAM, a PCIe host's reg and ranges -> MMIO windows and its
    interrupt-map -> wiring. The report counts the nodes imported and folded
    into the board, and names each node skipped with its reason (no binding,
    no QEMU model, a board-only device such as fw_cfg), the properties
    that could not be mapped and the values the tree does not give. Exit 2
    when FILE is not a device tree or cannot become a board (file:line:col
    for a DTS), 1 when a DTB needs dtc and it is not installed.
    """
    from .devicetree.dtimport import import_dtb

    stdout = output == Path("-")
    if not stdout:
        refuse_overwriting(output, [file], "-o")
    result = import_dtb(file, (file if stdout else output).stem)
    if stdout:
        click.echo(result.yaml, nl=False)
    else:
        try:
            write_file(output, result.yaml.encode("utf-8"))
        except OSError as exc:
            raise UsageError(f"machinedesc: cannot write {output}: {exc.strerror or exc}") from None
    click.echo("\n".join(printable(line) for line in result.report), err=True)  # the file's words, made safe


_FORMAT_HELP = "text: for terminals and pipes; json: for tools."


@cli.command("list")
@click.argument("directory", required=False, default="boards", type=click.Path(path_type=Path, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help=_FORMAT_HELP)
@_allow_host_access
def list_cmd(directory: Path, fmt: str, allow_host_access: bool) -> None:
    """List the boards in DIRECTORY (default boards/), one a row: name, system, CPUs by type, memory,
    plan steps, what it extends, summary. Boards that do not validate are listed with their first
    error (file:line:col). Exit 0 even then (the rows say it); 2 when DIRECTORY is not a directory."""
    from .views.catalog import read_catalog, render_json, render_table

    rows = read_catalog(directory, allow_host_access=allow_host_access)
    click.echo(render_table(rows) if fmt == "text" else render_json(rows), nl=False)


@cli.command()
@click.argument("board", type=FilePath(path_type=Path, dir_okay=False))
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Override a board parameter.")
@click.option("--catalog", type=click.Path(path_type=Path, file_okay=False), help=_CATALOG_HELP)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help=_FORMAT_HELP)
@_allow_host_access
def show(board: Path, sets: tuple[str, ...], catalog: Path | None, fmt: str, allow_host_access: bool) -> None:
    """Show BOARD once expanded: components grouped by cluster, the memory map by address (holes,
    overlaps and aliases marked) and the interrupt tree, through the split-irq/or-irq gates the
    planner inserts (docs/inspect.md)."""
    from .views import show as view

    loaded = load_board(board, parse_sets(sets), catalog, allow_host_access=allow_host_access)
    click.echo(view.render_text(loaded) if fmt == "text" else view.render_json(loaded), nl=False)


@cli.command()
@click.argument("board", type=FilePath(path_type=Path, dir_okay=False))
@_output_option("Write the picture here: FILE.svg or FILE.png (laid out by Graphviz's dot), FILE.dot "
                "(the source). Default: the DOT source on stdout.")
@click.option("--memory-map", is_flag=True, help="Draw the memory map (by address) instead of the machine.")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Override a board parameter.")
@click.option("--catalog", type=click.Path(path_type=Path, file_okay=False), help=_CATALOG_HELP)
@_allow_host_access
def graph(board: Path, output: Path | None, memory_map: bool, sets: tuple[str, ...], catalog: Path | None,
          allow_host_access: bool) -> None:
    """Draw BOARD with Graphviz: clusters as boxes holding their CPUs, devices with their addresses,
    IRQ wires as edges labelled with their lines, links dashed (docs/inspect.md). The same board
    gives the same bytes."""
    from .views import picture

    suffix = output.suffix.lower().lstrip(".") if output is not None else "dot"
    if suffix not in ("dot", "gv", *picture.FORMATS):
        raise UsageError(printable(f"machinedesc: -o {output}: write FILE.svg, FILE.png or FILE.dot"))
    if output is not None:
        refuse_overwriting(output, [board], "-o")
    loaded = load_board(board, parse_sets(sets), catalog, allow_host_access=allow_host_access)
    dot = picture.memory_map_dot(loaded) if memory_map else picture.machine_dot(loaded)
    data = dot.encode("utf-8") if suffix in ("dot", "gv") else picture.render(dot, suffix)
    if output is None:
        click.echo(dot, nl=False)
        return
    try:
        write_file(output, data)
    except OSError as exc:
        raise UsageError(f"machinedesc: cannot write {output}: {exc.strerror or exc}") from None


_DIFF_EXIT = """\b
Exit status (as diff's):
  0    the boards mean the same machine
  1    they differ
  2    a board is invalid, or a revision or file cannot be read
"""


@cli.command(epilog=_DIFF_EXIT)
@click.argument("old")
@click.argument("new")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Override a parameter of both boards.")
@click.option("--catalog", type=click.Path(path_type=Path, file_okay=False), help=_CATALOG_HELP)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help=_FORMAT_HELP)
@_allow_host_access
def diff(old: str, new: str, sets: tuple[str, ...], catalog: Path | None, fmt: str, allow_host_access: bool) -> None:
    """Compare two boards by meaning, once includes, parameters and count: are expanded: components
    added, removed or retyped, properties changed (with both file:line), memory map, wiring, plan step
    count. OLD and NEW are board files or FILE@REVISION, a git revision of one
    (boards/soc.yaml@HEAD~1): its extends and includes are read at that revision too."""
    from .views.diff import diff_boards

    text, equal = diff_boards(old, new, parse_sets(sets), catalog, fmt, allow_host_access=allow_host_access)
    click.echo(text, nl=False)
    if not equal:
        sys.stdout.flush()
        raise SystemExit(1)


@cli.command()
def schema() -> None:
    """Print the board JSON Schema (schemas/board.schema.json)."""
    from .board.schema import schema_text

    click.echo(schema_text(), nl=False)


@cli.group()
def qemu() -> None:
    """Build or locate the patched QEMU (qemu/README.md); introspect its device types (docs/types.md)."""


@qemu.command("build", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def qemu_build_cmd(args: tuple[str, ...]) -> None:
    """Build the patched QEMU into the cache (runs qemu/build.sh ARGS; idempotent); exit 7 if it fails."""
    qemu_build.build(list(args))


@qemu.command("path")
@click.argument("system")
def qemu_path(system: str) -> None:
    """Print the patched qemu-system-SYSTEM's path; exit 3 if it is not built."""
    binary = qemu_build.patched_binary(system)
    if binary is None:
        raise QemuNotFoundError(f"the patched qemu-system-{system} is not built: run `machinedesc qemu build`")
    click.echo(str(binary))


@qemu.command("introspect")
@click.argument("systems", nargs=-1, metavar="[SYSTEM...]")
@click.option("--qemu", "binary", metavar="BINARY", help="The QEMU binary (one SYSTEM; default: as apply finds it).")
@_output_option("Write the database (JSON) to this file (one SYSTEM).")
@click.option("--snapshot", is_flag=True, help="Write the shipped snapshots (package data typedb-SYSTEM.json).")
@click.option("--no-probe", is_flag=True, help="Types and properties only: do not instantiate the types.")
@click.option("--refresh", is_flag=True, help="Introspect again even when the cache has this binary.")
@click.option("-j", "--jobs", type=click.IntRange(1, 8), default=2, show_default=True, help="QEMUs at a time.")
def qemu_introspect(systems: tuple[str, ...], binary: str | None, output: Path | None, snapshot: bool,
                    no_probe: bool, refresh: bool, jobs: int) -> None:
    """Make the type database of QEMU binaries (docs/types.md): print each one's coverage.

    SYSTEM defaults to riscv64 and aarch64.  The result is cached per binary
    content; progress goes to stderr.
    """
    from .qemu.binary import find_binary
    from .qemu.typedb import introspect, snapshot_path

    systems = systems or ("riscv64", "aarch64")
    if (binary or output) and len(systems) != 1:
        raise UsageError("--qemu and -o take exactly one SYSTEM")
    for system in systems:
        def progress(text: str, system: str = system) -> None:
            click.echo(f"machinedesc: {system}: {text}", err=True)

        db = introspect(find_binary(system, binary), probe=not no_probe, jobs=jobs, refresh=refresh,
                        progress=progress, system=system)
        for target in ([output] if output else []) + ([snapshot_path(system)] if snapshot else []):
            write_file(target, db.dumps().encode())
            click.echo(f"machinedesc: wrote {target}", err=True)
        click.echo(db.summary())


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
