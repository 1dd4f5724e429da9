"""ELF images through --bios: the reset code enters them at their ELF entry, on the catalog boards.

The demo firmware (firmware/) reads no device tree and powers off: on
riscv-virt every hart goes through the boot ROM to the ELF's entry; on
arm64-virt CPU 0 starts at the entry (rvbar) and brings CPU 1 up with PSCI
(the boot keeps it powered off until then). The arm image is linked at the
start of RAM, where a firmware boot puts the device tree: --dtb none.
"""

from __future__ import annotations

from pathlib import Path

from harness import REPO, Sandbox


def lines(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def test_riscv_elf_bios_every_hart_through_the_boot_rom(sandbox: Sandbox, patched_riscv64: Path,
                                                        firmware: Path) -> None:
    out = sandbox.call(sandbox.argv_cli("apply", str(REPO / "boards" / "riscv-virt.yaml"), "--qemu",
                                        str(patched_riscv64), "--bios", str(firmware / "riscv64-hello.elf")))
    assert out.rc == 0, out.stderr
    assert lines(out.stdout) == ["hello from hart 0", "hello from hart 1", "hello from timer interrupt"]
    sandbox.assert_clean()


def test_arm64_elf_bios_secondary_cpu_through_psci(sandbox: Sandbox, patched_aarch64: Path, firmware: Path) -> None:
    out = sandbox.call(sandbox.argv_cli("apply", str(REPO / "boards" / "arm64-virt.yaml"), "--qemu",
                                        str(patched_aarch64), "--bios", str(firmware / "aarch64-hello.elf"),
                                        "--dtb", "none"))
    assert out.rc == 0, out.stderr
    assert lines(out.stdout) == ["hello from cpu 0", "hello from cpu 1"]
    sandbox.assert_clean()


def test_riscv_elf_of_the_wrong_architecture_never_starts_qemu(sandbox: Sandbox, patched_riscv64: Path,
                                                              firmware: Path) -> None:
    out = sandbox.call(sandbox.argv_cli("apply", str(REPO / "boards" / "riscv-virt.yaml"), "--qemu",
                                        str(patched_riscv64), "--bios", str(firmware / "aarch64-hello.elf")))
    assert out.rc == 2
    assert "is an AArch64 64-bit ELF, but the board's CPUs run RISC-V 64-bit code" in out.stderr
    assert out.stdout == ""
    sandbox.assert_clean()
