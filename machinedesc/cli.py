"""The command line: validate, plan, schema, qemu build/path (apply and run live in cli_run)."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import NoReturn

import click

from . import __version__
from .cli_run import EXIT_CODES, apply_cmd, check_inputs, parse_sets, refuse_overwriting, run_cmd
from .errors import BoardError, MachinedescError, UsageError, printable
from .plan.pipeline import load_plan
from .plan.render import render_json, render_qmp
from .qemu import build as qemu_build
from .storage import write_file

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
    phase by phase, `apply` builds it in a real QEMU (docs/).
    """


@cli.command()
@click.argument("boards", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Override a board parameter.")
@click.option("--catalog", type=click.Path(path_type=Path, file_okay=False), help=_CATALOG_HELP)
@_allow_host_access
def validate(boards: tuple[Path, ...], sets: tuple[str, ...], catalog: Path | None, allow_host_access: bool) -> None:
    """Check BOARDS and print every error (file:line:col), exit 2 if any."""
    overrides = parse_sets(sets)
    problems = []
    for board in boards:
        try:
            # The planner's graph stage finds ordering cycles: validate runs it too.
            load_plan(board, overrides, (), catalog, cache=True, allow_host_access=allow_host_access)
            click.echo(printable(f"{board}: ok"))  # a file name may hold control characters
        except BoardError as err:
            problems.extend(err.problems)
    if problems:
        raise BoardError(problems)


@cli.command()
@click.argument("board", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["qmp", "json"]), default="qmp", show_default=True,
              help="qmp: the QMP configuration file (qmp-shell syntax); json: one QMP message per line.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the plan here instead of stdout (a regular file is replaced atomically and keeps its mode).")
@click.option("--set", "sets", multiple=True, metavar="NAME=VALUE", help="Override a board parameter.")
@click.option("--firmware", multiple=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Add a step loading this ELF (repeatable).")
@click.option("--catalog", type=click.Path(path_type=Path, file_okay=False), help=_CATALOG_HELP)
@_allow_host_access
def plan(board: Path, fmt: str, output: Path | None, sets: tuple[str, ...], firmware: tuple[Path, ...],
         catalog: Path | None, allow_host_access: bool) -> None:
    """Print the ordered QMP commands that build BOARD, per machine-init phase (a dry run)."""
    check_inputs(firmware, "--firmware")
    if output is not None:
        refuse_overwriting(output, [board, *firmware], "-o")
    result = load_plan(board, parse_sets(sets), firmware, catalog, cache=True, allow_host_access=allow_host_access)
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
def schema() -> None:
    """Print the board JSON Schema (schemas/board.schema.json)."""
    from .board.schema import schema_text

    click.echo(schema_text(), nl=False)


@cli.group()
def qemu() -> None:
    """Build or locate the patched QEMU (qemu/README.md)."""


@qemu.command("build", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def qemu_build_cmd(args: tuple[str, ...]) -> None:
    """Build the patched QEMU into the cache (runs qemu/build.sh ARGS; idempotent)."""
    code = qemu_build.build(list(args))
    if code:
        raise SystemExit(code)


@qemu.command("path")
@click.argument("system")
def qemu_path(system: str) -> None:
    """Print the patched qemu-system-SYSTEM's path; exit 1 if it is not built."""
    binary = qemu_build.patched_binary(system)
    if binary is None:
        click.echo(f"the patched qemu-system-{system} is not built: run `machinedesc qemu build`", err=True)
        raise SystemExit(1)
    click.echo(str(binary))


cli.add_command(apply_cmd)
cli.add_command(run_cmd)


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point: run the CLI and turn errors into messages and exit codes, in one place."""
    try:
        cli.main(args=argv, prog_name="machinedesc", standalone_mode=False)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)
    except MachinedescError as err:
        print(str(err), file=sys.stderr)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception:  # noqa: BLE001 - the one place internal errors become exit 1
        traceback.print_exc()
        print("machinedesc: internal error (a bug): please report the traceback above", file=sys.stderr)
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    main()
