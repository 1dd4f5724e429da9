"""``machinedesc qemu``: build or locate the patched QEMU, introspect device types (qemu.build, qemu.typedb)."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import QemuNotFoundError, UsageError
from .options import output_option


@click.group()
def qemu() -> None:
    """Build or locate the patched QEMU (qemu/README.md); introspect its device types (docs/types.md)."""


@qemu.command("build", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def qemu_build_cmd(args: tuple[str, ...]) -> None:
    """Build the patched QEMU into the cache (runs qemu/build.sh ARGS; idempotent); exit 7 if it fails."""
    from ..qemu import build as qemu_build

    qemu_build.build(list(args))


@qemu.command("path")
@click.argument("system")
def qemu_path(system: str) -> None:
    """Print the patched qemu-system-SYSTEM's path; exit 3 if it is not built."""
    from ..qemu import build as qemu_build

    binary = qemu_build.patched_binary(system)
    if binary is None:
        raise QemuNotFoundError(f"the patched qemu-system-{system} is not built: run `machinedesc qemu build`")
    click.echo(str(binary))


@qemu.command("introspect")
@click.argument("systems", nargs=-1, metavar="[SYSTEM...]")
@click.option("--qemu", "binary", metavar="BINARY", help="The QEMU binary (one SYSTEM; default: as apply finds it).")
@output_option("Write the database (JSON) to this file (one SYSTEM).")
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
    from ..qemu.binary import find_binary
    from ..qemu.typedb import introspect, snapshot_path
    from ..storage import write_file

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
