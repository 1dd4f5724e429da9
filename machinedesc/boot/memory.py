"""The board's memories, as the boot placement sees them: RAM, ROM and flash regions with addresses and sizes.

RAM and ROM are ``sysbus-memory`` components (``size``, ``readonly``);
flash is ``cfi.pflash01`` (``num-blocks`` x ``sector-length`` bytes). Each
region is the component's MMIO region 0 at its mapped address.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..board.model import Board, Component


@dataclass(frozen=True)
class Region:
    """[base, base + size) of one memory component; ``kind`` is ram, rom or flash."""

    component: str
    kind: str
    base: int
    size: int

    @property
    def end(self) -> int:
        return self.base + self.size

    def holds(self, addr: int, size: int) -> bool:
        """Whether [addr, addr + size) lies inside this region."""
        return self.base <= addr and addr + size <= self.end

    def describe(self) -> str:
        return f"{self.kind} {self.component} [{self.base:#x}, {self.end:#x})"


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _region(c: Component) -> Region | None:
    if not c.mmio:
        return None
    base = c.mmio[0].addr
    if c.type == "sysbus-memory":
        size = _int(c.props.get("size"))
        kind = "rom" if c.props.get("readonly") is True else "ram"
    elif c.type == "cfi.pflash01":
        blocks, sector = _int(c.props.get("num-blocks")), _int(c.props.get("sector-length"))
        size = blocks * sector if blocks is not None and sector is not None else None
        kind = "flash"
    else:
        return None
    return Region(c.id, kind, base, size) if size else None


def regions(board: Board) -> list[Region]:
    """Every memory region of ``board``, by address."""
    found = [r for r in (_region(c) for c in board.components) if r is not None]
    return sorted(found, key=lambda r: (r.base, r.component))


def main_ram(found: list[Region]) -> Region | None:
    """The RAM the images go to: the largest RAM region (the lowest of equal ones)."""
    rams = [r for r in found if r.kind == "ram"]
    return max(rams, key=lambda r: (r.size, -r.base)) if rams else None


def first_flash(found: list[Region]) -> Region | None:
    """The flash a raw Arm firmware goes to: the lowest one (virt's flash0 at 0)."""
    return next((r for r in found if r.kind == "flash"), None)


def region_at(found: list[Region], addr: int, size: int) -> Region | None:
    """The region holding all of [addr, addr + size), if any."""
    return next((r for r in found if r.holds(addr, size)), None)
