"""The reset code machinedesc puts in the machine: what every CPU runs first, per architecture.

The words are QEMU's own (QEMU 10.0, ``hw/riscv/boot.c``
``riscv_setup_rom_reset_vec`` and ``riscv_rom_copy_firmware_info``;
``hw/arm/boot.c`` ``bootloader_aarch64``), so a board boots its firmware the
way ``-M virt`` does. ``tests/test_boot_resetcode.py`` assembles the same
instructions with the cross binutils and compares the encodings.

All values are little-endian; the result is bytes, deterministic for the
given addresses.
"""

from __future__ import annotations

import struct

#: OpenSBI's fw_dynamic information (include/hw/riscv/boot_opensbi.h).
FW_DYNAMIC_INFO_MAGIC = 0x4942534F  # "OSBI"
FW_DYNAMIC_INFO_VERSION = 2
FW_DYNAMIC_INFO_NEXT_MODE_S = 1

#: RISC-V reset vector, RV64 (hw/riscv/boot.c): (word, assembly). The data
#: words (start, fdt_laddr) follow at offset 24 and 32, fw_dynamic info at 40.
RISCV64_RESET_CODE: tuple[tuple[int, str], ...] = (
    (0x00000297, "auipc t0, 0"),        # 1: t0 = this ROM's address
    (0x02828613, "addi a2, t0, 40"),     # a2 = &fw_dynamic_info (after the code and data)
    (0xF1402573, "csrr a0, mhartid"),    # a0 = hart id
    (0x0202B583, "ld a1, 32(t0)"),       # a1 = DTB address (fdt_laddr)
    (0x0182B283, "ld t0, 24(t0)"),       # t0 = firmware entry (start)
    (0x00028067, "jr t0"),               # every hart jumps: OpenSBI picks its boot hart itself
)
#: Offset of the fw_dynamic info in the RISC-V reset ROM (10 words of 4 bytes).
RISCV64_INFO_OFFSET = 40

#: AArch64 boot code (hw/arm/boot.c bootloader_aarch64): x0 = DTB, x1..x3 = 0,
#: jump to the entry. The data words (DTB, entry) follow at offset 24 and 32.
AARCH64_BOOT_CODE: tuple[tuple[int, str], ...] = (
    (0x580000C0, "ldr x0, 24"),          # x0 = DTB address (arg)
    (0xAA1F03E1, "mov x1, xzr"),
    (0xAA1F03E2, "mov x2, xzr"),
    (0xAA1F03E3, "mov x3, xzr"),
    (0x58000084, "ldr x4, 32"),          # x4 = entry (kernel or firmware)
    (0xD61F0080, "br x4"),
)


def riscv64_reset_rom(start: int, dtb: int, next_addr: int) -> bytes:
    """The RV64 reset ROM: code, ``start`` (firmware entry), ``dtb``, then fw_dynamic info.

    ``next_addr`` is the fw_dynamic ``next_addr`` (the kernel's entry, 0
    without one: QEMU passes the same). Each hart enters with a0 = mhartid,
    a1 = ``dtb``, a2 = the info's address (fw_jump ignores a2). 88 bytes.
    """
    code = b"".join(struct.pack("<I", w) for w, _ in RISCV64_RESET_CODE)
    data = struct.pack("<QQ", start, dtb)
    info = struct.pack("<6Q", FW_DYNAMIC_INFO_MAGIC, FW_DYNAMIC_INFO_VERSION, next_addr,
                       FW_DYNAMIC_INFO_NEXT_MODE_S, 0, 0)
    rom = code + data
    assert len(rom) == RISCV64_INFO_OFFSET
    return rom + info


def aarch64_boot_code(entry: int, dtb: int) -> bytes:
    """The AArch64 boot code: x0 = ``dtb``, x1 = x2 = x3 = 0, branch to ``entry``. 40 bytes.

    Linux's ``Documentation/arch/arm64/booting.rst``: primary CPU with x0 =
    the DTB's physical address, MMU off; the secondaries stay powered off
    (the CPUs' ``start-powered-off``) until the kernel's PSCI ``CPU_ON``.
    """
    code = b"".join(struct.pack("<I", w) for w, _ in AARCH64_BOOT_CODE)
    return code + struct.pack("<QQ", dtb, entry)


def loader_writes(base: int, data: bytes) -> list[tuple[int, int, int]]:
    """``data`` at ``base`` as generic-loader writes: (address, value, length) of at most 8 bytes each.

    QEMU's ``loader`` device writes ``data`` (``data-len`` bytes, little
    endian) at ``addr`` on every reset, so the reset code is in the plan
    itself, not in a file beside it.
    """
    out: list[tuple[int, int, int]] = []
    off = 0
    while off < len(data):
        n = 8
        while n > len(data) - off:
            n //= 2
        out.append((base + off, int.from_bytes(data[off:off + n], "little"), n))
        off += n
    return out
