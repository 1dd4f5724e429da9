"""The board commands: validate, plan, dtb and schema.

Each imports the front half (``plan.pipeline``, the device-tree generator,
the renderers) when it runs: none of it is loaded for another command.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import BoardError, UsageError, printable, printable_lines
from .options import (CATALOG_HELP, FilePath, allow_host_access_option, boot_files, boot_flags, boot_options,
                      check_inputs, output_option, parse_sets, print_notes, refuse_overwriting, write_output)


@click.command()
@click.argument("boards", nargs=-1, required=True, type=FilePath(path_type=Path, dir_okay=False))
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Override a board parameter.")
@click.option("--catalog", type=click.Path(path_type=Path, file_okay=False), help=CATALOG_HELP)
@allow_host_access_option
def validate(boards: tuple[Path, ...], sets: tuple[str, ...], catalog: Path | None, allow_host_access: bool) -> None:
    """Check BOARDS and print every error (file:line:col), exit 2 if any."""
    from ..plan.pipeline import load_plan

    overrides = parse_sets(sets)
    problems = []
    noted: set[str] = set()
    for board in boards:
        try:
            # The planner's graph stage finds ordering cycles: validate runs it too.
            result = load_plan(board, overrides, (), catalog, cache=True, allow_host_access=allow_host_access)
            # A note that is not about one file's line (no type database for a system) is said once.
            print_notes([n for n in result.notes if n not in noted])
            noted.update(n for n in result.notes if n.startswith("note: no type database"))
            click.echo(printable(f"{board}: ok"))  # a file name may hold control characters
        except BoardError as err:
            problems.extend(err.problems)
    if problems:
        raise BoardError(problems)


@click.command()
@click.argument("board", type=FilePath(path_type=Path, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["qmp", "json"]), default="qmp", show_default=True,
              help="qmp: the QMP configuration file (qmp-shell syntax); json: one QMP message per line.")
@output_option("Write the plan here instead of stdout ('-': stdout; a regular file is replaced atomically "
               "and keeps its mode).")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Override a board parameter.")
@click.option("--firmware", multiple=True, type=FilePath(path_type=Path, dir_okay=False),
              help="Add a step loading this ELF (repeatable).")
@click.option("--catalog", type=click.Path(path_type=Path, file_okay=False), help=CATALOG_HELP)
@boot_flags
@allow_host_access_option
def plan(board: Path, fmt: str, output: Path | None, sets: tuple[str, ...], firmware: tuple[Path, ...],
         catalog: Path | None, bios: str | None, kernel: str | None, initrd: str | None, append: str | None,
         dtb: str | None, allow_host_access: bool) -> None:
    """Print the ordered QMP commands that build BOARD, per machine-init phase (a dry run).

    With a bios or kernel (options or the board's boot: section) the header
    says where each image, the device tree and the reset code go (docs/boot.md).
    """
    from ..plan.pipeline import load_plan
    from ..plan.render import render_json, render_qmp  # here: `apply` does not need the QMP file syntax

    check_inputs(firmware, "--firmware")
    boot = boot_options(bios, kernel, initrd, append, dtb)
    if output is not None:
        refuse_overwriting(output, [board, *firmware, *boot_files(boot)], "-o")
    result = load_plan(board, parse_sets(sets), firmware, catalog, cache=True, allow_host_access=allow_host_access,
                       boot=boot)
    print_notes(result.notes)
    text = render_qmp(result) if fmt == "qmp" else render_json(result)
    if output is None:
        click.echo(text, nl=False)
        return
    write_output(output, text.encode("utf-8"))


@click.command()
@click.argument("board", type=FilePath(path_type=Path, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["dtb", "dts"]), default="dtb", show_default=True,
              help="dtb: the flattened blob firmware reads; dts: the same tree as source text.")
@output_option("Write it here instead of stdout (a regular file is replaced atomically).")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Override a board parameter.")
@click.option("--catalog", type=click.Path(path_type=Path, file_okay=False), help=CATALOG_HELP)
@click.option("-v", "--verbose", is_flag=True, help="List on stderr what was left out of the tree, and why.")
@click.option("--check", is_flag=True,
              help="Also compile the tree with dtc (device-tree-compiler): exit 2 if dtc has anything to say.")
@allow_host_access_option
def dtb(board: Path, fmt: str, output: Path | None, sets: tuple[str, ...], catalog: Path | None,
        verbose: bool, check: bool, allow_host_access: bool) -> None:
    """Print the guest's device tree generated from BOARD (docs/devicetree.md).

    CPUs, memory, a node per device whose type has a binding, interrupts from
    the wiring, /chosen; the same board gives the same bytes.
    """
    from ..devicetree.generate import generate
    from ..plan.pipeline import load_board

    if output is not None:
        refuse_overwriting(output, [board], "-o")
    elif fmt == "dtb" and sys.stdout.isatty():
        raise UsageError("machinedesc: a DTB is binary: give -o FILE, redirect the output, or use --format dts")
    tree = generate(load_board(board, parse_sets(sets), catalog, allow_host_access=allow_host_access))
    if verbose:
        for note in tree.notes:
            click.echo(printable(f"machinedesc: dtb: {note}"), err=True)
    if check:
        from ..devicetree.dtc import compile_dts

        result = compile_dts(tree.to_dts())
        if result.messages or result.returncode:
            raise UsageError(printable_lines(
                f"machinedesc: dtc on {board}'s device tree:\n{result.messages.rstrip()}"))
    data = tree.to_dtb() if fmt == "dtb" else tree.to_dts().encode()
    if output is None:
        sys.stdout.buffer.write(data)
        return
    write_output(output, data)


@click.command()
def schema() -> None:
    """Print the board JSON Schema (schemas/board.schema.json)."""
    from ..board.schema import schema_text

    click.echo(schema_text(), nl=False)
