"""A board with windows of a region (mmio: offset + size), applied to the patched QEMU: built, verified, guest-visible.

The firmware writes through two windows of one RAM region and reads the bytes
back through the region and through the other window: the guest sees one
memory at three addresses.
"""

from __future__ import annotations

import dataclasses
import shutil
import struct
from pathlib import Path

import pytest
from harness import REPO
from needs import missing
from machinedesc import api

EM_RISCV = 243
# lui t2,0x10000 (UART); lui t0,0x20000 (window 1: region offset 0x1000); li t3,'X'; sb t3,0(t0);
# lui t1,0x30000 (window 2: region offset 0x1400); li t3,'Y'; sb t3,0(t1);
# lui t4,0x60001 (the region itself at 0x60000000, offset 0x1000); lbu t5,0(t4); sb t5,0(t2);
# lbu t5,0x400(t0) (window 1 + 0x400 = region offset 0x1400); sb t5,0(t2); j .
CODE = struct.pack("<13I", 0x100003B7, 0x200002B7, 0x05800E13, 0x01C28023, 0x30000337, 0x05900E13, 0x01C30023,
                   0x60001EB7, 0x000ECF03, 0x01E38023, 0x4002CF03, 0x01E38023, 0x0000006F)

BOARD = """machinedesc: 1
name: windows
system: riscv64
chardevs: {serial0: stdio}
components:
  cluster0: {type: cpu-cluster, props: {cluster-id: 0}}
  hart0: {type: rv64-riscv-cpu, parent: cluster0, props: {mhartid: 0, resetvec: 0x80000000}}
  ram: {type: sysbus-memory, props: {size: 0x10000}, mmio: 0x80000000}
  uart0: {type: serial-mm, props: {chardev: serial0, regshift: 0}, mmio: 0x10000000}
  data:
    type: sysbus-memory
    props: {size: 0x2000}
    mmio:
      - addr: 0x60000000
      - {addr: 0x20000000, offset: 0x1000, size: 0x1000}
      - {addr: 0x30000000, offset: 0x1400, size: 0x800}
"""


def tiny_elf(entry: int, code: bytes) -> bytes:
    """A little-endian ELF64 RISC-V executable with one PT_LOAD segment of ``code`` at ``entry``."""
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header += struct.pack("<HHIQQQIHHHHHH", 2, EM_RISCV, 1, entry, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    return header + struct.pack("<IIQQQQQQ", 1, 5, 120, entry, entry, len(code), len(code), 4) + code


@pytest.fixture
def board(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "b.yaml").write_text(BOARD, encoding="utf-8")
    (tmp_path / "fw.elf").write_bytes(tiny_elf(0x80000000, CODE))
    return tmp_path / "b.yaml", tmp_path / "fw.elf"


def test_the_guest_sees_one_region_through_its_windows(board: tuple[Path, Path], patched_riscv64: Path) -> None:
    with api.machine(board[0], firmware=[board[1]], qemu=patched_riscv64) as m:
        m.console.expect_exact("XY", timeout=10)
        names = {p["name"] for p in m.qmp("qom-list", path="/machine/peripheral/data")}
        assert {"mmio0-alias-0x1000+0x1000@0x20000000[0]", "mmio0-alias-0x1400+0x800@0x30000000[0]"} <= names
        flat = m.qmp("human-monitor-command", **{"command-line": "info mtree -f"})
        assert "0000000030000000-00000000300007ff (prio 0, ram): mem @0000000000001400" in flat


def test_a_window_qemu_did_not_make_is_a_verification_error(board: tuple[Path, Path],
                                                           patched_riscv64: Path) -> None:
    plan = api.plan(board[0])
    window = next(c for c in plan.components if c.subject.startswith("data/mmio0-alias-0x1000"))
    wrong = dataclasses.replace(window, subject="data/mmio0-alias-0x0+0x1000@0x20000000[0]",
                                path="/machine/peripheral/data/mmio0-alias-0x0+0x1000@0x20000000[0]")
    plan = dataclasses.replace(plan, checks=tuple(wrong if c is window else c for c in plan.checks))
    with pytest.raises(api.StepError) as err:
        with api.machine(plan, qemu=patched_riscv64, paused=True):
            raise AssertionError("not reached")
    assert (f"{window.location}: MMIO window 'data/mmio0-alias-0x0+0x1000@0x20000000[0]': no object at "
            "/machine/peripheral/data/mmio0-alias-0x0+0x1000@0x20000000[0]") in str(err.value)



UBOOT_ARM64 = Path("/usr/lib/u-boot/qemu_arm64/u-boot.bin")
#: QEMU virt's PCIe host as board entries: the ECAM, the 32-bit and the 64-bit PCI memory through
#: windows (the window's offset is the PCI address), the I/O space as a region; INTA-D on SPIs 3-6
#: (also tests/apply/test_dtb_import.py's round trip).
VIRT_PCIE_HOST = """components:
  pcie:
    type: gpex-pcihost
    mmio:
      - {addr: 0x4010000000, offset: 0, size: 0x10000000}
      - {addr: 0x10000000, region: 1, offset: 0x10000000, size: 0x2eff0000}
      - {addr: 0x8000000000, region: 1, offset: 0x8000000000, size: 0x8000000000}
      - {addr: 0x3eff0000, region: 2}
wiring:
  pcie-gic: {from: "pcie.sysbus-irq[0..3]", to: "gic.unnamed-gpio-in[3..6]"}
"""
#: boards/arm64-virt.yaml with that host.
PCIE_VARIANT = "machinedesc: 1\nextends: arm64-virt.yaml\n" + VIRT_PCIE_HOST


def test_uboot_finds_the_pcie_host_through_its_windows(tmp_path: Path, patched_aarch64: Path) -> None:
    """Debian's U-Boot reads the generated pcie node (reg, ranges) and enumerates the bus through the ECAM window."""
    if not UBOOT_ARM64.is_file():
        missing(f"{UBOOT_ARM64} is missing (scripts/install.sh installs u-boot-qemu)")
    catalog = tmp_path / "catalog"
    shutil.copytree(REPO / "boards", catalog)
    (catalog / "pcie.yaml").write_text(PCIE_VARIANT, encoding="utf-8")
    with api.machine(catalog / "pcie.yaml", boot={"bios": str(UBOOT_ARM64)}, qemu=patched_aarch64,
                     timeout=60) as m:
        m.console.expect(r"\n=> ", timeout=120)
        m.console.sendline("pci")
        m.console.expect(r"00\.00\.00\s+0x1b36\s+0x0008\s+Bridge device", timeout=20)
        m.console.expect("=> ", timeout=20)
        m.console.sendline("md.l 0x4010000000 1")
        m.console.expect("4010000000: 00081b36", timeout=20)
