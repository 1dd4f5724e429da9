"""The importers: import-qmp (a QMP configuration file) and import-dtb (a device tree) to a board file.

Each imports its importer (``plan.qmpimport``, ``devicetree.dtimport``) when it runs.
"""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import printable
from .options import FilePath, refuse_overwriting, write_output


@click.command("import-qmp")
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
    from ..plan import qmpdialect
    from ..plan.qmpfile import load
    from ..plan.qmpimport import import_qmp

    refuse_overwriting(output, [file], "-o")
    qmp = load(file)
    found = qmpdialect.detect(qmp)
    if (found.name if dialect == "auto" else dialect) == qmpdialect.V4:
        size, _ = qmpdialect.ram_size(["-m", ram_size] if ram_size else [])
        qmp = qmpdialect.translate(qmp, size)
    result = import_qmp(qmp, system, output.stem)
    write_output(output, result.yaml.encode("utf-8"))
    click.echo("\n".join(printable(line) for line in result.report), err=True)  # the file's words, made safe


@click.command("import-dtb")
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
    from ..devicetree.dtimport import import_dtb

    stdout = output == Path("-")
    if not stdout:
        refuse_overwriting(output, [file], "-o")
    result = import_dtb(file, (file if stdout else output).stem)
    if stdout:
        click.echo(result.yaml, nl=False)
    else:
        write_output(output, result.yaml.encode("utf-8"))
    click.echo("\n".join(printable(line) for line in result.report), err=True)  # the file's words, made safe
