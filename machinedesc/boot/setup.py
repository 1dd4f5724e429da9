"""Board + boot options -> BootSetup: which options apply, the placement by architecture, the result.

The command line's ``--bios/--kernel/--initrd/--append/--dtb`` win over the
board's ``boot:`` entries of the same name; the placement itself is
``boot.virt`` (QEMU virt's rules) over ``boot.placer`` (claims, loader
steps, board changes); ``--firmware`` ELFs are checked in ``boot.firmware``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ..board.bootspec import BootEntry
from ..board.model import Board
from ..errors import Collector
from . import virt
from .placer import Fail, Item, Load, Placer

#: The command line's boot options, in QEMU's names.
OPTIONS = ("bios", "kernel", "initrd", "append", "dtb")


@dataclass(frozen=True)
class BootSetup:
    """What booting adds to a plan: the board with boot ROM and CPU properties, the loads, the report.

    ``notes`` are the placement lines of the plan's header; ``files`` every
    file the placement read or wrote (the plan cache stamps them).
    """

    board: Board
    loads: tuple[Load, ...]
    notes: tuple[str, ...]
    files: tuple[Path, ...]


def prepare(board: Board, options: Mapping[str, str], problems: Collector) -> BootSetup | None:
    """The BootSetup of ``board`` with the command line's ``options`` (bios, kernel, ... -> value).

    None when nothing boots (no ``boot:`` section, no option). Problems go to
    ``problems`` (then the result is None too).
    """
    items: dict[str, Item] = {}
    spec = board.boot
    entries: Mapping[str, BootEntry] = spec.entries if spec else {}
    for key in OPTIONS:
        if key in options:
            items[key] = Item(options[key], None, f"--{key}")
        elif key in entries:
            items[key] = Item(entries[key].value, entries[key].location, f"boot.{key}")
    if not items and (spec is None or spec.rom is None):
        return None
    placer = Placer(board, items, problems)
    try:
        return _run(placer)
    except Fail:
        return None


def _run(p: Placer) -> BootSetup:
    """The placement for the board's system; the loader ids checked against the board's components."""
    if p.system == "riscv64":
        board = virt.riscv(p)
    elif p.system == "aarch64":
        board = virt.aarch64(p)
    else:
        first = next(iter(p.items.values()), None)
        raise p.fail(first, f"booting is not supported for system {p.system} yet",
                     "boards of riscv64 and aarch64 boot; others load ELFs with --firmware")
    taken = {c.id for c in board.components}
    for load in p.loads:
        if load.args["id"] in taken:
            raise p.fail(None, f"component id '{load.args['id']}' is used by the boot loaders",
                         "rename the component")
    return BootSetup(board, tuple(p.loads), tuple(p.notes), tuple(p.files))
