"""Board + boot options -> BootSetup: where each image goes, the reset code, the loader devices.

Placement follows QEMU 10.0's virt machines (docs/boot.md has the table):

- RISC-V (``hw/riscv/boot.c``): a raw firmware at the start of RAM; a raw
  kernel at the firmware's end rounded up to 2 MiB; the initrd at the
  kernel's start + min(RAM / 2, 512 MiB); the DTB at the end of RAM minus its
  size, rounded down to 2 MiB. Reset code in a 4 KiB boot ROM (default
  0x1000, virt's mrom) that every hart's ``resetvec`` points at.
- AArch64 (``hw/arm/boot.c``): a raw firmware at the start of the first
  flash; the DTB at the start of RAM for firmware. A kernel Image at the
  start of RAM + its header's ``text_offset`` (+ 2 MiB when below 4 KiB; 512
  KiB without a header); the initrd at RAM + min(RAM / 2, 128 MiB) (after the
  kernel's end if that is further), page-aligned; the DTB after the initrd,
  2 MiB-aligned. Boot code at the start of RAM (or in a boot ROM at
  ``boot.rom``); CPU 0's ``rvbar`` points at it (at the firmware with
  ``bios``), the other CPUs start powered off until PSCI ``CPU_ON``.

An ELF is loaded at its own ``p_paddr`` addresses, and every loadable
segment must lie in the board's RAM, ROM or flash.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..board.bootspec import BootEntry
from ..board.checks import region_size
from ..board.model import Board, Component, Mmio
from ..errors import Collector
from ..source import SourceLocation
from ..storage import FileProblem
from . import resetcode
from .dtb import DtbError, cached_dtb, dtb_bytes
from .images import Image, ImageError, image_system, load_image
from .memory import Region, first_flash, main_ram, region_at, regions

#: The command line's boot options, in QEMU's names.
OPTIONS = ("bios", "kernel", "initrd", "append", "dtb")
MiB = 1 << 20
KiB = 1 << 10
#: Size of the boot ROM machinedesc adds (virt's mrom holds the same code).
ROM_SIZE = 4 * KiB
RISCV_ROM_DEFAULT = 0x1000
BOOTROM_ID = "bootrom"


@dataclass(frozen=True)
class Load:
    """One ``loader`` device: its device_add arguments, why, and the board entry or option behind it."""

    args: Mapping[str, Any]
    reason: str
    location: SourceLocation | None


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


@dataclass(frozen=True)
class _Item:
    value: str
    location: SourceLocation | None
    where: str  # "boot.kernel" or "--kernel"


class _Fail(Exception):
    """A placement problem, already added to the collector."""


def prepare(board: Board, options: Mapping[str, str], problems: Collector) -> BootSetup | None:
    """The BootSetup of ``board`` with the command line's ``options`` (bios, kernel, ... -> value).

    None when nothing boots (no ``boot:`` section, no option). Problems go to
    ``problems`` (then the result is None too).
    """
    items: dict[str, _Item] = {}
    spec = board.boot
    entries: Mapping[str, BootEntry] = spec.entries if spec else {}
    for key in OPTIONS:
        if key in options:
            items[key] = _Item(options[key], None, f"--{key}")
        elif key in entries:
            items[key] = _Item(entries[key].value, entries[key].location, f"boot.{key}")
    if not items and (spec is None or spec.rom is None):
        return None
    placer = _Placer(board, items, problems)
    try:
        return placer.run()
    except _Fail:
        return None


def _cpu_types(board: Board) -> list[str]:
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
            images.append(load_image(Path(path), image_system(board.system, _cpu_types(board))))
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


def _align_up(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def _align_down(n: int, a: int) -> int:
    return n // a * a


class _Placer:
    def __init__(self, board: Board, items: dict[str, _Item], problems: Collector) -> None:
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
        self.spec = board.boot

    # ------------------------------------------------------------ helpers

    def fail(self, item: _Item | None, message: str, hint: str | None = None) -> _Fail:
        where = item.where if item else "boot"
        loc = item.location if item else (self.spec.rom_location if self.spec else None)
        self.problems.add(loc, where, message, hint)
        return _Fail()

    def image(self, key: str) -> Image | None:
        item = self.items.get(key)
        if item is None:
            return None
        path = Path(item.value).resolve()  # QEMU reads it from another working directory
        try:
            img = load_image(path, image_system(self.system, _cpu_types(self.board)))
        except FileProblem as err:
            raise self.fail(item, f"{key} {item.value} {err.message}", err.hint) from None
        except ImageError as err:
            raise self.fail(item, f"{key} {item.value} {err.message}", err.hint) from None
        self.files.append(img.source.resolve())
        if img.path != img.source:
            self.files.append(img.path)
        return img

    def need_ram(self, item: _Item) -> Region:
        if self.ram is None:
            raise self.fail(item, f"{item.where.split('.')[-1].lstrip('-')} needs RAM, and the board has none",
                            "add a sysbus-memory component mapped in the address space")
        return self.ram

    def claim(self, item: _Item | None, what: str, addr: int, size: int, placed: bool = True) -> None:
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

    # ------------------------------------------------------------ per architecture

    def run(self) -> BootSetup:
        if self.system == "riscv64":
            board = self.riscv()
        elif self.system == "aarch64":
            board = self.aarch64()
        else:
            first = next(iter(self.items.values()), None)
            raise self.fail(first, f"booting is not supported for system {self.system} yet",
                            "boards of riscv64 and aarch64 boot; others load ELFs with --firmware")
        taken = {c.id for c in board.components}
        for load in self.loads:
            if load.args["id"] in taken:
                raise self.fail(None, f"component id '{load.args['id']}' is used by the boot loaders",
                                "rename the component")
        return BootSetup(board, tuple(self.loads), tuple(self.notes), tuple(self.files))

    def entry_item(self) -> _Item:
        item = self.items.get("bios") or self.items.get("kernel")
        if item is None:
            other = next(iter(self.items.values()), None)
            raise self.fail(other, "nothing to boot: give a bios or a kernel", "e.g. --bios fw_jump.bin")
        return item

    def riscv(self) -> Board:
        item = self.entry_item()
        ram = self.need_ram(item)
        bios = self.image("bios")
        fw_end = ram.base
        start = 0
        if bios is not None:
            addr = None if bios.elf else ram.base
            self.load_file("bios", bios, addr)
            start = bios.entry if bios.elf and bios.entry is not None else ram.base
            fw_end = bios.high if bios.elf else ram.base + bios.size
        kernel = self.image("kernel")
        kernel_entry, low, high = 0, 0, 0
        if kernel is not None:
            if kernel.elf:
                assert kernel.entry is not None
                kernel_entry, low, high = kernel.entry, kernel.low, kernel.high
                self.load_file("kernel", kernel, None)
            else:
                low = kernel_entry = _align_up(fw_end, 2 * MiB)
                high = low + kernel.footprint
                self.load_file("kernel", kernel, low)
            if bios is None:
                start = kernel_entry
        limit = self.initrd(low + min(ram.size // 2, 512 * MiB), kernel is not None)
        dtb_addr = 0
        data = self.dtb_bytes(limit)
        if data is not None:
            dtb_addr = _align_down(ram.end - len(data), 2 * MiB)
            floor = limit[1] if limit else high
            if dtb_addr < max(floor, ram.base):
                raise self.fail(self.items.get("dtb") or item,
                                f"no room for the device tree at the end of RAM after the images (RAM ends "
                                f"at {ram.end:#x}, the images at {floor:#x})", "give the board more RAM")
            self.place_dtb(data, dtb_addr)
        rom = self.spec.rom if self.spec and self.spec.rom is not None else RISCV_ROM_DEFAULT
        code = resetcode.riscv64_reset_rom(start, dtb_addr, kernel_entry)
        board = self.add_rom(rom)
        self.load_data("reset vector", rom, code, None)
        self.notes.append(f"reset: {len(code)} bytes at {rom:#x} (boot ROM '{BOOTROM_ID}'), every hart: a0 = mhartid, "
                          f"a1 = {dtb_addr:#x} (DTB), a2 = {rom + resetcode.RISCV64_INFO_OFFSET:#x} (fw_dynamic "
                          f"info, next {kernel_entry:#x} in S-mode), jump to {start:#x}")
        return self.with_cpus(board, "-riscv-cpu", lambda i: {"resetvec": rom})

    def initrd(self, start: int, have_kernel: bool) -> tuple[int, int] | None:
        img = self.image("initrd")
        if img is None:
            return None
        item = self.items["initrd"]
        if not have_kernel:
            raise self.fail(item, "initrd needs a kernel", "give --kernel too")
        self.load_file("initrd", img, start)
        return (start, start + img.size)

    def aarch64(self) -> Board:
        item = self.entry_item()
        ram = self.need_ram(item)
        bios = self.image("bios")
        entry = 0
        if bios is not None:
            if bios.elf:
                assert bios.entry is not None
                entry = bios.entry
                self.load_file("bios", bios, None)
            else:
                flash = first_flash(self.regions)
                if flash is None:
                    raise self.fail(self.items["bios"], "a raw arm firmware goes to flash, and the board has none",
                                    "add a cfi.pflash01 (virt has it at 0), or give an ELF firmware")
                entry = flash.base
                self.load_file("bios", bios, flash.base)
        kernel = self.image("kernel")
        code_at = self.spec.rom if self.spec and self.spec.rom is not None else ram.base
        high = ram.base
        if kernel is not None:
            if kernel.elf:
                assert kernel.entry is not None
                kernel_entry, high = kernel.entry, kernel.high
                self.load_file("kernel", kernel, None)
            else:
                offset = 0x80000 if kernel.text_offset is None else kernel.text_offset
                if kernel.text_offset is not None and offset < 4 * KiB:
                    offset += 2 * MiB  # leave the bottom of RAM to the boot code (QEMU does the same)
                kernel_entry = ram.base + offset
                high = kernel_entry + kernel.footprint
                self.load_file("kernel", kernel, kernel_entry)
            if bios is None:
                entry = kernel_entry
        start = _align_up(max(ram.base + min(ram.size // 2, 128 * MiB), high), 4 * KiB)
        initrd = self.initrd(start, kernel is not None)
        data = self.dtb_bytes(initrd)
        dtb_addr = 0
        if data is not None:
            dtb_addr = ram.base if bios is not None else _align_up(initrd[1] if initrd else start, 2 * MiB)
            if bios is None and dtb_addr + len(data) > ram.end:
                raise self.fail(self.items.get("dtb") or item, "no room for the device tree after the initrd",
                                "give the board more RAM")
            self.place_dtb(data, dtb_addr)
        board = self.board
        rvbar = entry
        if bios is None:
            code = resetcode.aarch64_boot_code(entry, dtb_addr)
            if self.spec and self.spec.rom is not None:
                board = self.add_rom(code_at)
            else:
                self.claim(None, "boot code", code_at, len(code))
            self.load_data("boot code", code_at, code, None)
            rvbar = code_at
            self.notes.append(f"reset: {len(code)} bytes at {code_at:#x}, CPU 0: x0 = {dtb_addr:#x} (DTB), "
                              f"x1 = x2 = x3 = 0, branch to {entry:#x}")
        self.notes.append(f"cpus: rvbar = {rvbar:#x}; CPUs after the first start powered off (PSCI CPU_ON)")
        return self.with_cpus(board, "-arm-cpu", lambda i: {"rvbar": rvbar, "start-powered-off": i != 0})

    # ------------------------------------------------------------ board changes

    def add_rom(self, addr: int) -> Board:
        """The board with a ``sysbus-memory`` of ROM_SIZE at ``addr`` for the reset code.

        It is writable memory: the loader writes the code with plain stores at
        every reset, as a ROM would refuse them (the guest never writes it).
        """
        where = None
        if self.spec is not None and self.spec.rom is not None:
            where = _Item(hex(addr), self.spec.rom_location, "boot.rom")
        self.regions.append(Region(BOOTROM_ID, "rom", addr, ROM_SIZE))
        for c in self.board.components:
            for m in c.mmio:
                size = m.size or region_size(c, m.region) or 1  # a mapping's size, else the type data's
                if m.addr < addr + ROM_SIZE and addr < m.addr + size:
                    # The default place: the error is at the mapping in the way (boot.rom is not written).
                    at = where or _Item(hex(m.addr), m.location or c.location, f"{c.yaml_path}.mmio")
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
