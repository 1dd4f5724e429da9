"""The reset code's bytes: deterministic, laid out as QEMU's, and the same encodings the cross assembler gives.

The instruction words in machinedesc/boot/resetcode.py are copied from QEMU
(hw/riscv/boot.c, hw/arm/boot.c); here binutils assembles the same program
(firmware/install-deps.sh installs riscv64-unknown-elf-as and
aarch64-linux-gnu-as) and the words must match.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from needs import missing

from machinedesc.boot import resetcode

RISCV_SOURCE = """\
    .option norvc
1:  auipc t0, %pcrel_hi(fw_dyn)
    addi a2, t0, %pcrel_lo(1b)
    csrr a0, mhartid
    ld a1, 32(t0)
    ld t0, 24(t0)
    jr t0
start: .dword 0
fdt_laddr: .dword 0
fw_dyn:
"""

AARCH64_SOURCE = """\
    ldr x0, arg
    mov x1, xzr
    mov x2, xzr
    mov x3, xzr
    ldr x4, entry
    br x4
arg: .dword 0
entry: .dword 0
"""


def assemble(tool_prefix: str, source: str, tmp_path: Path, *flags: str) -> bytes:
    """``source`` assembled, linked at 0x1000 (the ROM's address) and flattened to raw bytes."""
    tools = [shutil.which(f"{tool_prefix}{t}") for t in ("as", "ld", "objcopy")]
    if None in tools:
        missing(f"{tool_prefix}as/ld/objcopy not installed (firmware/install-deps.sh)")
    asm, ld, objcopy = (str(t) for t in tools)
    obj, elf, raw = tmp_path / "code.o", tmp_path / "code.elf", tmp_path / "code.bin"
    (tmp_path / "code.s").write_text(source)
    res = subprocess.run([asm, *flags, "-o", str(obj), str(tmp_path / "code.s")], capture_output=True, text=True,
                         check=False)
    assert res.returncode == 0, res.stderr
    subprocess.run([ld, "-Ttext=0x1000", "-e", "0x1000", "-o", str(elf), str(obj)], check=True)
    subprocess.run([objcopy, "-O", "binary", "-j", ".text", str(elf), str(raw)], check=True)
    return raw.read_bytes()


def words(data: bytes, n: int) -> list[int]:
    return list(struct.unpack_from(f"<{n}I", data))


def test_riscv_words_are_what_the_assembler_makes(tmp_path: Path) -> None:
    raw = assemble("riscv64-unknown-elf-", RISCV_SOURCE, tmp_path, "-march=rv64imac_zicsr")
    assert len(raw) == resetcode.RISCV64_INFO_OFFSET
    assert words(raw, 6) == [w for w, _ in resetcode.RISCV64_RESET_CODE]


def test_aarch64_words_are_what_the_assembler_makes(tmp_path: Path) -> None:
    raw = assemble("aarch64-linux-gnu-", AARCH64_SOURCE, tmp_path)
    assert words(raw, 6) == [w for w, _ in resetcode.AARCH64_BOOT_CODE]


def test_riscv_rom_layout() -> None:
    rom = resetcode.riscv64_reset_rom(0x80000000, 0x8FE00000, 0x80200000)
    assert rom == resetcode.riscv64_reset_rom(0x80000000, 0x8FE00000, 0x80200000)  # deterministic
    assert len(rom) == 88
    start, fdt = struct.unpack_from("<QQ", rom, 24)
    assert (start, fdt) == (0x80000000, 0x8FE00000)
    # fw_dynamic_info: magic "OSBI", version 2, next_addr, next_mode S, options, boot_hart.
    assert struct.unpack_from("<6Q", rom, 40) == (0x4942534F, 2, 0x80200000, 1, 0, 0)
    assert rom[:4].hex() == "97020000"


def test_aarch64_code_layout() -> None:
    code = resetcode.aarch64_boot_code(entry=0x40200000, dtb=0x48000000)
    assert len(code) == 40
    assert struct.unpack_from("<QQ", code, 24) == (0x48000000, 0x40200000)


@pytest.mark.parametrize("size", [1, 3, 8, 13, 88])
def test_loader_writes_cover_the_bytes_once(size: int) -> None:
    data = bytes(range(1, size + 1))
    writes = resetcode.loader_writes(0x1000, data)
    assert all(n in (1, 2, 4, 8) for _, _, n in writes)
    rebuilt = b"".join(v.to_bytes(n, "little") for _, v, n in writes)
    assert rebuilt == data
    assert [a for a, _, _ in writes] == [0x1000 + sum(n for _, _, n in writes[:k]) for k in range(len(writes))]
