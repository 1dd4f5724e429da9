"""The views of boards: list, show, graph and diff (machinedesc.views, imported when a command runs)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..errors import UsageError, printable
from .options import (CATALOG_HELP, FORMAT_HELP, FilePath, allow_host_access_option, output_option, parse_sets,
                      refuse_overwriting, write_output)


@click.command("list")
@click.argument("directory", required=False, default="boards", type=click.Path(path_type=Path, file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help=FORMAT_HELP)
@allow_host_access_option
def list_cmd(directory: Path, fmt: str, allow_host_access: bool) -> None:
    """List the boards in DIRECTORY (default boards/), one a row: name, system, CPUs by type, memory,
    plan steps, what it extends, summary. Boards that do not validate are listed with their first
    error (file:line:col). Exit 0 even then (the rows say it); 2 when DIRECTORY is not a directory."""
    from ..views.catalog import read_catalog, render_json, render_table

    rows = read_catalog(directory, allow_host_access=allow_host_access)
    click.echo(render_table(rows) if fmt == "text" else render_json(rows), nl=False)


@click.command()
@click.argument("board", type=FilePath(path_type=Path, dir_okay=False))
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Override a board parameter.")
@click.option("--catalog", type=click.Path(path_type=Path, file_okay=False), help=CATALOG_HELP)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help=FORMAT_HELP)
@allow_host_access_option
def show(board: Path, sets: tuple[str, ...], catalog: Path | None, fmt: str, allow_host_access: bool) -> None:
    """Show BOARD once expanded: components grouped by cluster, the memory map by address (holes,
    overlaps and aliases marked) and the interrupt tree, through the split-irq/or-irq gates the
    planner inserts (docs/inspect.md)."""
    from ..plan.pipeline import load_board
    from ..views import show as view

    loaded = load_board(board, parse_sets(sets), catalog, allow_host_access=allow_host_access)
    if fmt == "text":
        click.echo(view.render_text(loaded, view.written_size_params(board, catalog)), nl=False)
    else:
        click.echo(view.render_json(loaded), nl=False)


@click.command()
@click.argument("board", type=FilePath(path_type=Path, dir_okay=False))
@output_option("Write the picture here: FILE.svg or FILE.png (laid out by Graphviz's dot), FILE.dot "
               "(the source). Default: the DOT source on stdout.")
@click.option("--memory-map", is_flag=True, help="Draw the memory map (by address) instead of the machine.")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Override a board parameter.")
@click.option("--catalog", type=click.Path(path_type=Path, file_okay=False), help=CATALOG_HELP)
@allow_host_access_option
def graph(board: Path, output: Path | None, memory_map: bool, sets: tuple[str, ...], catalog: Path | None,
          allow_host_access: bool) -> None:
    """Draw BOARD with Graphviz: clusters as boxes holding their CPUs, devices with their addresses,
    IRQ wires as edges labelled with their lines, links dashed (docs/inspect.md). The same board
    gives the same bytes."""
    from ..plan.pipeline import load_board
    from ..views import picture

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
    write_output(output, data)


_DIFF_EXIT = """\b
Exit status (as diff's):
  0    the boards mean the same machine
  1    they differ
  2    a board is invalid, or a revision or file cannot be read
"""


@click.command(epilog=_DIFF_EXIT)
@click.argument("old")
@click.argument("new")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Override a parameter of both boards.")
@click.option("--catalog", type=click.Path(path_type=Path, file_okay=False), help=CATALOG_HELP)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help=FORMAT_HELP)
@allow_host_access_option
def diff(old: str, new: str, sets: tuple[str, ...], catalog: Path | None, fmt: str, allow_host_access: bool) -> None:
    """Compare two boards by meaning, once includes, parameters and count: are expanded: components
    added, removed or retyped, properties changed (with both file:line), memory map, wiring, plan step
    count. OLD and NEW are board files or FILE@REVISION, a git revision of one
    (boards/soc.yaml@HEAD~1): its extends and includes are read at that revision too."""
    from ..views.diff import diff_boards

    text, equal = diff_boards(old, new, parse_sets(sets), catalog, fmt, allow_host_access=allow_host_access)
    click.echo(text, nl=False)
    if not equal:
        sys.stdout.flush()
        raise SystemExit(1)
