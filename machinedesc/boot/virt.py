"""QEMU 10.0 virt's placement, per architecture: where each image, the DTB and the reset code go.

Enters: a ``Placer`` (board, options). Leaves: the board with its boot ROM
and CPU reset properties; the loads and notes are the placer's. The rules
(docs/boot.md has the table):

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

from ..board.model import Board
from . import resetcode
from .memory import first_flash
from .placer import BOOTROM_ID, KiB, Item, Placer

MiB = 1 << 20
RISCV_ROM_DEFAULT = 0x1000


def _align_up(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def _align_down(n: int, a: int) -> int:
    return n // a * a


def _entry_item(p: Placer) -> Item:
    item = p.items.get("bios") or p.items.get("kernel")
    if item is None:
        other = next(iter(p.items.values()), None)
        raise p.fail(other, "nothing to boot: give a bios or a kernel", "e.g. --bios fw_jump.bin")
    return item


def riscv(p: Placer) -> Board:
    """A riscv64 board's placement (hw/riscv/boot.c): firmware, kernel, initrd, DTB, the ROM's reset code."""
    item = _entry_item(p)
    ram = p.need_ram(item)
    bios = p.image("bios")
    fw_end = ram.base
    start = 0
    if bios is not None:
        addr = None if bios.elf else ram.base
        p.load_file("bios", bios, addr)
        start = bios.entry if bios.elf and bios.entry is not None else ram.base
        fw_end = bios.high if bios.elf else ram.base + bios.size
    kernel = p.image("kernel")
    kernel_entry, low, high = 0, 0, 0
    if kernel is not None:
        if kernel.elf:
            assert kernel.entry is not None
            kernel_entry, low, high = kernel.entry, kernel.low, kernel.high
            p.load_file("kernel", kernel, None)
        else:
            low = kernel_entry = _align_up(fw_end, 2 * MiB)
            high = low + kernel.footprint
            p.load_file("kernel", kernel, low)
        if bios is None:
            start = kernel_entry
    limit = _initrd(p, low + min(ram.size // 2, 512 * MiB), kernel is not None)
    dtb_addr = 0
    data = p.dtb_bytes(limit)
    if data is not None:
        dtb_addr = _align_down(ram.end - len(data), 2 * MiB)
        floor = limit[1] if limit else high
        if dtb_addr < max(floor, ram.base):
            raise p.fail(p.items.get("dtb") or item,
                         f"no room for the device tree at the end of RAM after the images (RAM ends "
                         f"at {ram.end:#x}, the images at {floor:#x})", "give the board more RAM")
        p.place_dtb(data, dtb_addr)
    rom = p.spec.rom if p.spec and p.spec.rom is not None else RISCV_ROM_DEFAULT
    code = resetcode.riscv64_reset_rom(start, dtb_addr, kernel_entry)
    board = p.add_rom(rom)
    p.load_data("reset vector", rom, code, None)
    p.notes.append(f"reset: {len(code)} bytes at {rom:#x} (boot ROM '{BOOTROM_ID}'), every hart: a0 = mhartid, "
                   f"a1 = {dtb_addr:#x} (DTB), a2 = {rom + resetcode.RISCV64_INFO_OFFSET:#x} (fw_dynamic "
                   f"info, next {kernel_entry:#x} in S-mode), jump to {start:#x}")
    return p.with_cpus(board, "-riscv-cpu", lambda i: {"resetvec": rom})


def _initrd(p: Placer, start: int, have_kernel: bool) -> tuple[int, int] | None:
    """The initrd loaded at ``start``: its [start, end), or None without one."""
    img = p.image("initrd")
    if img is None:
        return None
    item = p.items["initrd"]
    if not have_kernel:
        raise p.fail(item, "initrd needs a kernel", "give --kernel too")
    p.load_file("initrd", img, start)
    return (start, start + img.size)


def aarch64(p: Placer) -> Board:
    """An aarch64 board's placement (hw/arm/boot.c): firmware, kernel, initrd, DTB, the boot code."""
    item = _entry_item(p)
    ram = p.need_ram(item)
    bios = p.image("bios")
    entry = 0
    if bios is not None:
        if bios.elf:
            assert bios.entry is not None
            entry = bios.entry
            p.load_file("bios", bios, None)
        else:
            flash = first_flash(p.regions)
            if flash is None:
                raise p.fail(p.items["bios"], "a raw arm firmware goes to flash, and the board has none",
                             "add a cfi.pflash01 (virt has it at 0), or give an ELF firmware")
            entry = flash.base
            p.load_file("bios", bios, flash.base)
    kernel = p.image("kernel")
    code_at = p.spec.rom if p.spec and p.spec.rom is not None else ram.base
    high = ram.base
    if kernel is not None:
        if kernel.elf:
            assert kernel.entry is not None
            kernel_entry, high = kernel.entry, kernel.high
            p.load_file("kernel", kernel, None)
        else:
            offset = 0x80000 if kernel.text_offset is None else kernel.text_offset
            if kernel.text_offset is not None and offset < 4 * KiB:
                offset += 2 * MiB  # leave the bottom of RAM to the boot code (QEMU does the same)
            kernel_entry = ram.base + offset
            high = kernel_entry + kernel.footprint
            p.load_file("kernel", kernel, kernel_entry)
        if bios is None:
            entry = kernel_entry
    start = _align_up(max(ram.base + min(ram.size // 2, 128 * MiB), high), 4 * KiB)
    initrd = _initrd(p, start, kernel is not None)
    data = p.dtb_bytes(initrd)
    dtb_addr = 0
    if data is not None:
        dtb_addr = ram.base if bios is not None else _align_up(initrd[1] if initrd else start, 2 * MiB)
        if bios is None and dtb_addr + len(data) > ram.end:
            raise p.fail(p.items.get("dtb") or item, "no room for the device tree after the initrd",
                         "give the board more RAM")
        p.place_dtb(data, dtb_addr)
    board = p.board
    rvbar = entry
    if bios is None:
        code = resetcode.aarch64_boot_code(entry, dtb_addr)
        if p.spec and p.spec.rom is not None:
            board = p.add_rom(code_at)
        else:
            p.claim(None, "boot code", code_at, len(code))
        p.load_data("boot code", code_at, code, None)
        rvbar = code_at
        p.notes.append(f"reset: {len(code)} bytes at {code_at:#x}, CPU 0: x0 = {dtb_addr:#x} (DTB), "
                       f"x1 = x2 = x3 = 0, branch to {entry:#x}")
    p.notes.append(f"cpus: rvbar = {rvbar:#x}; CPUs after the first start powered off (PSCI CPU_ON)")
    return p.with_cpus(board, "-arm-cpu", lambda i: {"rvbar": rvbar, "start-powered-off": i != 0})
