"""The Placer: memory claims, ``loader`` steps, the device tree's bytes, the boot ROM and the CPUs' properties.

The mechanics every architecture's placement (``boot.virt``) shares: an
image read and checked (``image``), a range claimed inside the board's
memory and apart from every range claimed before (``claim``), a ``Load``
(one ``loader`` device) per image, reset-code chunk and DTB, and the board
changes booting makes (``add_rom``, ``with_cpus``). A problem is added to
the collector once and raised as ``Fail`` (``fail``).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..board.bootspec import BootSpec
from ..board.checks import region_size
from ..board.model import Board, Component, Mmio
from ..errors import Collector
from ..source import SourceLocation
from ..storage import FileProblem
from . import resetcode
from .dtb import DtbError, cached_dtb, dtb_bytes
from .firmware import cpu_types
from .images import Image, ImageError, image_system, load_image
from .memory import Region, main_ram, region_at, regions

KiB = 1 << 10
#: Size of the boot ROM machinedesc adds (virt's mrom holds the same code).
ROM_SIZE = 4 * KiB
BOOTROM_ID = "bootrom"


@dataclass(frozen=True)
class Load:
    """One ``loader`` device: its device_add arguments, why, and the board entry or option behind it."""

    args: Mapping[str, Any]
    reason: str
    location: SourceLocation | None



@dataclass(frozen=True)
class Item:
    """One boot option's value, where it was written (None: the command line) and its name there."""

    value: str
    location: SourceLocation | None
    where: str  # "boot.kernel" or "--kernel"


class Fail(Exception):
    """A placement problem, already added to the collector."""


class Placer:
    """One board's placement under way: its memory regions, the ranges claimed, the loads, notes and files."""

    def __init__(self, board: Board, items: dict[str, Item], problems: Collector) -> None:
        self.board = board
        self.items = items
        self.problems = problems
        self.system = board.system
        self.regions = regions(board)
        self.ram = main_ram(self.regions)
        self.used: list[tuple[int, int, str]] = []
        self.loads: list[Load] = []
        self.notes: list[str] = []
        self.files: list[Path] = []
        self.spec: BootSpec | None = board.boot

    # ------------------------------------------------------------ helpers

    def fail(self, item: Item | None, message: str, hint: str | None = None) -> Fail:
        where = item.where if item else "boot"
        loc = item.location if item else (self.spec.rom_location if self.spec else None)
        self.problems.add(loc, where, message, hint)
        return Fail()

    def image(self, key: str) -> Image | None:
        item = self.items.get(key)
        if item is None:
            return None
        path = Path(item.value).resolve()  # QEMU reads it from another working directory
        try:
            img = load_image(path, image_system(self.system, cpu_types(self.board)))
        except FileProblem as err:
            raise self.fail(item, f"{key} {item.value} {err.message}", err.hint) from None
        except ImageError as err:
            raise self.fail(item, f"{key} {item.value} {err.message}", err.hint) from None
        self.files.append(img.source.resolve())
        if img.path != img.source:
            self.files.append(img.path)
        return img

    def need_ram(self, item: Item) -> Region:
        if self.ram is None:
            raise self.fail(item, f"{item.where.split('.')[-1].lstrip('-')} needs RAM, and the board has none",
                            "add a sysbus-memory component mapped in the address space")
        return self.ram

    def claim(self, item: Item | None, what: str, addr: int, size: int, placed: bool = True) -> None:
        """[addr, addr + size) for ``what``: inside a memory region, overlapping nothing placed before."""
        if size <= 0:
            return
        if region_at(self.regions, addr, size) is None:
            have = ", ".join(r.describe() for r in self.regions) or "none"
            raise self.fail(item, f"{what} [{addr:#x}, {addr + size:#x}) is not in the board's memory "
                                  f"(memories: {have})",
                            "give the board more memory there (a larger RAM, or flash for an Arm bios)" if placed else
                            "give an image built for this board's memory map, or map memory there")
        for start, end, other in self.used:
            if addr < end and start < addr + size:
                hint = "move one of them (e.g. a larger RAM, or an image linked elsewhere)"
                if what == "dtb":
                    hint += "; --dtb none for images that read no device tree"
                raise self.fail(item, f"{what} [{addr:#x}, {addr + size:#x}) overlaps {other} [{start:#x}, {end:#x})",
                                hint)
        self.used.append((addr, addr + size, what))

    def load_file(self, key: str, img: Image, addr: int | None) -> None:
        """A loader for ``img``: an ELF at its own addresses (segments checked), a raw image at ``addr``."""
        item = self.items[key]
        name = f"{key} {item.value}"
        if img.elf:
            for seg in img.segments:
                self.claim(item, f"{name}: segment", seg.addr, seg.memsz, placed=False)
            args: dict[str, Any] = {"driver": "loader", "id": f"boot-{key}", "file": str(img.path)}
            self.notes.append(f"{key}: {img.source} (ELF, entry {img.entry:#x}) "
                              + ", ".join(f"[{s.addr:#x}, {s.end:#x})" for s in img.segments))
        else:
            assert addr is not None
            self.claim(item, name, addr, img.footprint)
            args = {"driver": "loader", "id": f"boot-{key}", "file": str(img.path), "addr": addr, "force-raw": True}
            packed = f", unpacked from gzip to {img.path}" if img.gzip else ""
            self.notes.append(f"{key}: {img.source} (raw, {img.size:,} bytes{packed}) at "
                              f"[{addr:#x}, {addr + img.footprint:#x})")
        self.loads.append(Load(args, f"load {key} {item.value}", item.location))

    def load_data(self, what: str, base: int, data: bytes, location: SourceLocation | None) -> None:
        for k, (addr, value, length) in enumerate(resetcode.loader_writes(base, data)):
            self.loads.append(Load({"driver": "loader", "id": f"boot-code{k}", "addr": addr, "data": value,
                                    "data-len": length}, f"{what}, bytes {addr - base}..{addr - base + length - 1}",
                                   location))

    # ------------------------------------------------------------ the device tree

    def dtb_bytes(self, initrd: tuple[int, int] | None) -> bytes | None:
        item = self.items.get("dtb")
        mode = item.value if item else "auto"
        append = self.items.get("append")
        if mode == "none":
            if append or initrd:
                raise self.fail(append or self.items["initrd"],
                                "--append and --initrd are passed in the device tree, and --dtb is none",
                                "use --dtb auto or --dtb FILE")
            return None
        try:
            data, source = dtb_bytes(mode, self.board, append.value if append else None, initrd)
        except DtbError as err:
            raise self.fail(item, err.message, err.hint) from None
        if mode != "auto":
            self.files.append(Path(mode).resolve())
        self.notes.append(f"dtb: {source}, {len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()}")
        return data

    def place_dtb(self, data: bytes, addr: int) -> int:
        item = self.items.get("dtb")
        try:
            path = cached_dtb(data)
        except DtbError as err:
            raise self.fail(item, err.message, err.hint) from None
        self.files.append(path)
        self.claim(item, "dtb", addr, len(data))
        self.notes[-1] += f", at {addr:#x} ({path})"
        self.loads.append(Load({"driver": "loader", "id": "boot-dtb", "file": str(path), "addr": addr,
                                "force-raw": True}, "load the device tree", item.location if item else None))
        return addr

    # ------------------------------------------------------------ board changes

    def add_rom(self, addr: int) -> Board:
        """The board with a ``sysbus-memory`` of ROM_SIZE at ``addr`` for the reset code.

        It is writable memory: the loader writes the code with plain stores at
        every reset, as a ROM would refuse them (the guest never writes it).
        """
        where = None
        if self.spec is not None and self.spec.rom is not None:
            where = Item(hex(addr), self.spec.rom_location, "boot.rom")
        self.regions.append(Region(BOOTROM_ID, "rom", addr, ROM_SIZE))
        for c in self.board.components:
            for m in c.mmio:
                size = m.size or region_size(c, m.region) or 1  # a mapping's size, else the type data's
                if m.addr < addr + ROM_SIZE and addr < m.addr + size:
                    # The default place: the error is at the mapping in the way (boot.rom is not written).
                    at = where or Item(hex(m.addr), m.location or c.location, f"{c.yaml_path}.mmio")
                    raise self.fail(at, f"the boot ROM for the reset code [{addr:#x}, {addr + ROM_SIZE:#x}) "
                                        f"overlaps {m.describe(c.id)} [{m.addr:#x}, {m.addr + size:#x})",
                                    "give the board a free address for it: boot: {rom: ADDR}, "
                                    "4 KiB outside every region (docs/boot.md)")
        if BOOTROM_ID in {c.id for c in self.board.components}:
            raise self.fail(where, f"component id '{BOOTROM_ID}' is the boot ROM's", "rename the component")
        rom = Component(id=BOOTROM_ID, type="sysbus-memory", index=len(self.board.components), location=None,
                        yaml_path="boot.rom", props={"size": ROM_SIZE},
                        mmio=(Mmio(0, addr, 0, ROM_SIZE, None),), synthetic=False, system=self.board.system)
        return dataclasses.replace(self.board, components=(*self.board.components, rom))

    def with_cpus(self, board: Board, suffix: str, props: Any) -> Board:
        """``board`` with ``props(i)`` set on its i-th CPU of a type ending in ``suffix``."""
        out: list[Component] = []
        i = 0
        for c in board.components:
            if c.info.is_cpu and c.type.endswith(suffix):
                c = dataclasses.replace(c, props={**c.props, **props(i)})
                i += 1
            out.append(c)
        return dataclasses.replace(board, components=tuple(out))
