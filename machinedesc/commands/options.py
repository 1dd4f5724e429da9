"""Options and argument checks the commands share: file arguments, --set, boot images, --serial, -o.

Only click and ``errors`` are imported here, at the top: a command's --help,
and every other command, must not pay for what one command uses.  Checks
raise UsageError (exit 2) before any work starts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import click

from ..errors import UsageError, exit_table, printable

#: The exit-status table of --help, from machinedesc.errors.Exit.
EXIT_CODES = exit_table()

SERIAL_HELP = ("Where the board's console chardev goes: stdio (the terminal, default), "
               "file:PATH, socket:PATH (a listening unix socket) or none.")
CATALOG_HELP = "Directory that includes may not leave (default: the board's directory)."
FORMAT_HELP = "text: for terminals and pipes; json: for tools."

allow_host_access_option = click.option(
    "--allow-host-access", is_flag=True,
    help="Let the board run QMP commands and use backends that touch the host (host files, "
         "sockets, devices, network; the list is in docs/format.md). Only for boards you trust.")


def _check_timeout(ctx: click.Context, param: click.Parameter, value: float) -> float:
    # nan passes every `<= 0` test and inf never times out: refuse both here, before any work.
    if not (math.isfinite(value) and value > 0):
        raise click.BadParameter(f"must be a positive number of seconds, not {value}", ctx, param)
    return value


def qemu_options(func: click.decorators.FC) -> click.decorators.FC:
    """--qemu, --serial, --paused, --detach, --connect, --timeout, -v, --allow-host-access (apply, run)."""
    for option in reversed([
        click.option("--qemu", "qemu", metavar="PATH",
                     help="QEMU binary (default: $MACHINEDESC_QEMU_<SYSTEM>, $MACHINEDESC_QEMU, "
                          "the patched build, then PATH)."),
        click.option("--serial", metavar="SPEC", help=SERIAL_HELP),
        click.option("--paused", is_flag=True, help="Leave the CPUs stopped after building (-S)."),
        click.option("--detach", is_flag=True,
                     help="Leave QEMU running in the background; print its pid and QMP socket."),
        click.option("--connect", metavar="SOCKET",
                     help="Build in a QEMU you started with -preconfig and -qmp unix:SOCKET,server=on,wait=on "
                          "(it is never killed)."),
        click.option("--timeout", type=float, default=30.0, show_default=True, metavar="SECONDS",
                     callback=_check_timeout,
                     help="How long to wait for QEMU to start or answer one command (one x-batch of up to "
                          "256 steps counts as one; -v sends steps one at a time); a QEMU that stops "
                          "answering is given up after that long, wherever it happens."),
        click.option("-v", "--verbose", is_flag=True, help="Echo every QMP command and reply on stderr."),
        click.option("--allow-host-access", is_flag=True,
                     help="Let the board or file use QMP commands, backends and QEMU options that touch the "
                          "host (host files, sockets, devices, network; docs/format.md). Only for files you trust."),
    ]):
        func = option(func)
    return func


def boot_flags(func: click.decorators.FC) -> click.decorators.FC:
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


def boot_files(boot: dict[str, str]) -> list[Path]:
    """The files among the boot options (what an output must not overwrite)."""
    return [Path(v) for k, v in boot.items() if k != "append" and v not in ("auto", "none")]


class FilePath(click.Path):
    """click.Path that refuses an empty name (``''`` would be read as ``.``, the working directory)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value == "":
            self.fail("an empty file name: name a file, e.g. boards/soc.yaml", param, ctx)
        return super().convert(value, param, ctx)


def output_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
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


def validate_serial(serial: str | None, inputs: Sequence[Path] = ()) -> None:
    """Refuse a malformed --serial (qemu.chardevs.parse_serial), and a console file that is one of the
    ``inputs`` (it would be emptied)."""
    if serial is None:
        return
    from ..qemu.chardevs import parse_serial

    try:
        kind, target = parse_serial(serial)
    except ValueError as err:
        raise UsageError(printable(str(err))) from None
    if kind in ("file", "socket"):
        refuse_overwriting(Path(target), inputs, "--serial")


def refuse_overwriting(output: Path, inputs: Sequence[Path], option: str) -> None:
    """UsageError (exit 2) when ``output`` is one of the files the command reads."""
    from ..storage import same_file

    source = same_file(output, inputs)
    if source is not None:
        raise UsageError(printable(f"machinedesc: {option} {output} is {source}, an input of this command: "
                                   "writing it would destroy it; choose another file"))


def check_inputs(paths: Sequence[Path], option: str) -> None:
    """UsageError (exit 2) for an input that is not a regular file (a FIFO, a device, a directory)."""
    from ..storage import FileProblem, check_regular

    for path in paths:
        try:
            check_regular(path)
        except FileProblem as err:
            raise UsageError(printable(f"machinedesc: {option} {path}: {err.message}")) from None


def write_output(output: Path, data: bytes) -> None:
    """Write a command's output file (storage.write_file: a regular file replaced atomically, keeping its
    mode; a device such as /dev/null written in place; a symlink written through); UsageError if it fails."""
    from ..storage import write_file

    try:
        write_file(output, data)
    except OSError as exc:
        raise UsageError(f"machinedesc: cannot write {output}: {exc.strerror or exc}") from None


def print_notes(notes: Sequence[str]) -> None:
    """What validation could not check (a board file's own words, made printable), on stderr."""
    for line in notes:
        click.echo(printable(line), err=True)
