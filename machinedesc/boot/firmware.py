"""``--firmware`` ELFs checked against the board: their architecture, and whether any CPU starts inside them.

Enters: a checked ``Board`` and the ``--firmware`` paths. Leaves: problems
(an ELF for another architecture) and a note (no CPU's reset vector in the
ELFs) in the collector; nothing is placed (QEMU's generic loader does that).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..board.model import Board, Component
from ..errors import Collector
from ..storage import FileProblem
from .images import Image, ImageError, image_system, load_image


def cpu_types(board: Board) -> list[str]:
    """The type of every CPU of ``board``, in board order (``image_system`` reads their suffixes)."""
    return [c.type for c in board.components if c.info.is_cpu]


#: Where a CPU starts when the board does not say, by CPU type suffix: the property and QEMU
#: 10.0's default (target/riscv/cpu.c DEFAULT_RSTVEC; target/arm/cpu.c: rvbar 0, which the
#: type database does not record). Cortex-M CPUs have no rvbar: they read their vector table.
RESET_VECTOR: dict[str, tuple[str, int]] = {"-riscv-cpu": ("resetvec", 0x1000), "-arm-cpu": ("rvbar", 0)}


def check_firmware(board: Board, firmware: Sequence[Path], problems: Collector, booting: bool = False) -> None:
    """``--firmware`` ELFs must be built for the board's architecture (a problem each otherwise).

    Other formats (uImage, Intel hex) are left to QEMU's loader, as before.
    A note when no CPU starts inside the ELFs (_start_note), unless a boot
    set-up (``booting``: the command line's boot options, or the board's
    ``boot:``) places reset code of its own.
    """
    images: list[Image] = []
    for path in firmware:
        try:
            with Path(path).open("rb") as f:
                if f.read(4) != b"\x7fELF":
                    continue
            images.append(load_image(Path(path), image_system(board.system, cpu_types(board))))
        except (OSError, FileProblem):
            continue  # reported by the loader step as before
        except ImageError as err:
            problems.add(None, f"--firmware {path}", err.message, err.hint)
    if images and len(images) == len(firmware) and not booting and board.boot is None:
        _start_note(board, images, problems)


def _start_note(board: Board, images: Sequence[Image], problems: Collector) -> None:
    """Note when every CPU's reset vector lies outside the ``--firmware`` ELFs' segments.

    QEMU's generic loader (the step ``--firmware`` becomes) loads an ELF
    without setting any PC (hw/core/generic-loader.c: only with ``cpu-num``),
    so a CPU runs it only if its reset vector (RISC-V ``resetvec``, Arm
    ``rvbar``) points into it: otherwise the machine runs whatever is at the
    reset vector (often nothing) and the console stays silent (an imported
    board's harts keep QEMU's 0x1000).  A board whose ROM holds reset code of
    its own (a component with a file) makes this a false alarm, hence a note,
    at the first CPU's props.
    """
    starts: list[tuple[Component, str, int]] = []
    for c in board.components:
        prop, default = next((v for suffix, v in RESET_VECTOR.items() if c.type.endswith(suffix)), ("", 0))
        known = c.info.properties
        if not c.info.is_cpu or not prop or (known is not None and prop not in known):
            continue  # not a CPU, or one without the property (Cortex-M)
        start = c.props.get(prop, default)
        if isinstance(start, int) and not isinstance(start, bool):
            starts.append((c, prop, start))
    if not starts or any(seg.addr <= start < seg.end for _, _, start in starts
                         for image in images for seg in image.segments):
        return
    first, prop, start = starts[0]
    cpu = "hart" if prop == "resetvec" else "CPU"
    entries = ", ".join(f"{image.entry:#x}" for image in images if image.entry is not None)
    problems.note(first.part_location("props", prop), "--firmware",
                  f"no {cpu} starts inside the firmware: {first.id} starts at {start:#x} ({prop}"
                  f"{'' if prop in first.props else ', the default'}), the ELF entry is {entries or 'unknown'} "
                  "and QEMU's loader sets no PC",
                  f"set the {cpu}s' {prop} to the entry (props: {{{prop}: ...}}), or give the board a "
                  "boot: section (docs/boot.md)")
