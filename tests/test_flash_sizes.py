"""CFI flash regions sized from their properties (qemu/data/qemu_types.yaml): overlaps checked, no note.

tests/qemu/test_flash_region_sizes.py holds the same sizes against QEMU's own memory tree.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from machinedesc.board.checks_mmio import region_size
from machinedesc.errors import BoardError
from machinedesc.plan.pipeline import load_board, load_plan

#: (type, props, the region's size by pflash_cfi02_realize / pflash_cfi01_realize)
SIZES = [
    ("cfi.pflash02", "{name: f, num-blocks: 16, sector-length: 0x10000, width: 2}", 16 * 0x10000),
    ("cfi.pflash02", "{name: f, num-blocks: 8, sector-length: 0x1000, width: 1, mappings: 4}", 4 * 8 * 0x1000),
    ("cfi.pflash02", "{name: f, num-blocks: 2, sector-length: 0x20000, width: 2, mappings: 1}", 2 * 0x20000),
    ("cfi.pflash01", "{name: f, num-blocks: 4, sector-length: 0x40000, width: 4}", 4 * 0x40000),
    ("cfi.pflash01", "{name: f, num-blocks: 2, sector-length: 0x10000, width: 1}", 2 * 0x10000),
]


def flash_board(tmp_path: Path, driver: str, props: str, ram_at: int) -> Path:
    """An aarch64 board: a CPU, the flash at 0 and 1 MiB of RAM at ``ram_at``."""
    path = tmp_path / "flash.yaml"
    path.write_text("machinedesc: 1\nsystem: aarch64\ncomponents:\n  cpu0: {type: cortex-a53-arm-cpu}\n"
                    f"  flash:\n    type: {driver}\n    props: {props}\n    mmio: 0x0\n"
                    f"  ram: {{type: sysbus-memory, props: {{size: 1 MiB}}, mmio: {ram_at:#x}}}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(("driver", "props", "size"), SIZES)
def test_the_region_size_follows_the_properties(tmp_path: Path, driver: str, props: str, size: int) -> None:
    board = load_board(flash_board(tmp_path, driver, props, 0x10000000))
    assert region_size(board.by_id["flash"], 0) == size


@pytest.mark.parametrize(("driver", "props", "size"), SIZES)
def test_a_flash_that_fits_validates_without_a_note(tmp_path: Path, driver: str, props: str, size: int) -> None:
    plan = load_plan(flash_board(tmp_path, driver, props, size))  # the RAM right after the flash
    assert not any("flash" in note for note in plan.notes), plan.notes


@pytest.mark.parametrize(("driver", "props", "size"), SIZES)
def test_a_flash_over_the_ram_is_refused(tmp_path: Path, driver: str, props: str, size: int) -> None:
    path = flash_board(tmp_path, driver, props, size - 0x1000)  # the RAM over the flash's last 4 KiB
    with pytest.raises(BoardError) as err:
        load_plan(path)
    assert str(err.value).splitlines()[0] == (
        f"{path}:9:58: components.ram.mmio: ram region 0 [{size - 0x1000:#x}, {size - 0x1000 + 0x100000 - 1:#x}] "
        f"overlaps flash region 0 [0x0, {size - 1:#x}] at the same priority 0")


def test_erase_regions_are_a_note_not_a_size(tmp_path: Path) -> None:
    # num-blocksN/sector-lengthN: pflash_cfi02_realize sums them up to the first zero num-blocksN (not computed).
    props = "{name: f, num-blocks0: 1, sector-length0: 0x10000, num-blocks1: 2, sector-length1: 0x10000, width: 2}"
    plan = load_plan(flash_board(tmp_path, "cfi.pflash02", props, 0x10000000))
    assert any("overlaps of flash region 0 are not checked" in note and "flash sets num-blocks0, num-blocks1, "
               "sector-length0, sector-length1, which may change it" in note for note in plan.notes), plan.notes
