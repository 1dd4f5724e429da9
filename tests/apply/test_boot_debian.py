"""Debian's firmware and kernel, which nobody here wrote, booting on the catalog boards through `machinedesc apply`.

OpenSBI (``fw_jump.bin``) and U-Boot (``qemu-riscv64_smode``) reach U-Boot's
prompt on boards/riscv-virt.yaml with 2 and 4 harts, OpenSBI reporting the
board's hart count; U-Boot ``qemu_arm64`` reaches its prompt on
boards/arm64-virt.yaml; Debian's arm64 cloud kernel boots there with the
generated device tree until it looks for its root file system. Packages:
``opensbi``, ``u-boot-qemu``, and the kernel that scripts/install.sh unpacks
into build/guest/. Missing ones skip loudly (fail under CI).

machinedesc runs as the user runs it (the CLI in a subprocess, the guest's
console to a file); the test stops it with SIGINT, as Ctrl-C would, and the
sandbox checks that no QEMU and no private directory is left.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from harness import REPO, Sandbox
from needs import missing

OPENSBI_DIR = Path("/usr/lib/riscv64-linux-gnu/opensbi/generic")
UBOOT_RISCV = Path("/usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin")
UBOOT_ARM64 = Path("/usr/lib/u-boot/qemu_arm64/u-boot.bin")
KERNEL_ARM64 = Path(os.environ.get("MACHINEDESC_GUEST_KERNEL_ARM64", REPO / "build" / "guest" / "vmlinuz-cloud-arm64"))
RISCV_VIRT = REPO / "boards" / "riscv-virt.yaml"
ARM64_VIRT = REPO / "boards" / "arm64-virt.yaml"
#: Generous: TCG on a loaded 2-core machine (a Linux boot takes 4-60 s).
FIRMWARE_TIMEOUT = 120.0
LINUX_TIMEOUT = 240.0


def need(path: Path, package: str) -> Path:
    if not path.is_file():
        missing(f"{path} is missing (scripts/install.sh installs {package})")
    return path


def boot(sandbox: Sandbox, qemu: Path, board: Path, *options: str, until: str, timeout: float) -> str:
    """`machinedesc apply BOARD OPTIONS` until the console shows ``until`` (a regex); then Ctrl-C. The console."""
    console = sandbox.base / "console.log"
    proc = sandbox.start(sandbox.argv_cli("apply", str(board), "--qemu", str(qemu), *options,
                                          "--serial", f"file:{console}"))
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = console.read_text(errors="replace") if console.exists() else ""
        if re.search(until, text) or proc.poll() is not None:
            break
        time.sleep(0.2)
    running = proc.poll() is None
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    text = console.read_text(errors="replace") if console.exists() else ""
    assert running, f"machinedesc ended by itself ({proc.returncode}): {err.decode()}\nconsole:\n{text}"
    assert re.search(until, text), f"{until!r} did not appear within {timeout} s; console:\n{text[-3000:]}"
    assert proc.returncode == 130, err.decode()
    sandbox.assert_clean()
    return text


@pytest.mark.parametrize("harts, opensbi", [(2, "fw_jump"), (4, "fw_jump"), (2, "fw_dynamic")])
def test_opensbi_and_uboot_reach_the_prompt_on_riscv_virt(harts: int, opensbi: str, sandbox: Sandbox,
                                                          patched_riscv64: Path) -> None:
    """fw_jump jumps to its built-in address; fw_dynamic to the one the reset code's fw_dynamic info gives."""
    bios = need(OPENSBI_DIR / f"{opensbi}.bin", "opensbi")
    text = boot(sandbox, patched_riscv64, RISCV_VIRT, "--set", f"harts={harts}",
                "--bios", str(bios), "--kernel", str(need(UBOOT_RISCV, "u-boot-qemu")),
                until=r"\n=> ", timeout=FIRMWARE_TIMEOUT)
    assert "OpenSBI v" in text
    # OpenSBI counts the harts of the generated device tree; every one of them is in its domain.
    assert re.search(rf"Platform HART Count\s+: {harts}\n", text), text
    assert re.search(r"Domain0 HARTs\s+: " + ",".join(f"{i}\\*" for i in range(harts)) + r"\n", text), text
    assert "Domain0 Next Address      : 0x0000000080200000" in text  # U-Boot where the placement put it
    assert "Model: machinedesc riscv-virt" in text  # U-Boot reads the generated tree


def test_uboot_reaches_the_prompt_on_arm64_virt(sandbox: Sandbox, patched_aarch64: Path) -> None:
    text = boot(sandbox, patched_aarch64, ARM64_VIRT, "--bios", str(need(UBOOT_ARM64, "u-boot-qemu")),
                until=r"\n=> ", timeout=FIRMWARE_TIMEOUT)
    assert "U-Boot 20" in text
    assert "DRAM:  128 MiB" in text  # from the generated tree's /memory, at the start of RAM
    assert "In:    pl011@9000000" in text


def empty_initramfs(path: Path) -> Path:
    """A cpio archive (newc) holding only its trailer: Linux unpacks it, finds no /init, mounts a root fs."""
    name = b"TRAILER!!!\0"
    header = b"070701" + b"".join(f"{v:08x}".encode() for v in (0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, len(name), 0))
    entry = header + name
    entry += b"\0" * (-len(entry) % 4)
    path.write_bytes(entry + b"\0" * (8192 - len(entry)))  # two pages: Linux frees (and says) them after
    return path


@pytest.mark.parametrize("cpus", [2, 4])
def test_debian_linux_boots_on_arm64_virt_until_its_root_fs(cpus: int, sandbox: Sandbox,
                                                            patched_aarch64: Path) -> None:
    kernel = need(KERNEL_ARM64, "the arm64 cloud kernel (linux-image-cloud-arm64)")
    initrd = empty_initramfs(sandbox.base / "initrd.cpio")
    text = boot(sandbox, patched_aarch64, ARM64_VIRT, "--set", f"cpus={cpus}", "--kernel", str(kernel),
                "--initrd", str(initrd), "--append", "console=ttyAMA0 machinedesc.test=1",
                until=r"VFS: Unable to mount root fs", timeout=LINUX_TIMEOUT)
    assert "Machine model: machinedesc arm64-virt" in text
    assert "Kernel command line: console=ttyAMA0 machinedesc.test=1" in text
    assert "psci: PSCIv" in text and "Using PSCI v0.1" not in text
    for cpu in range(1, cpus):
        assert f"CPU{cpu}: Booted secondary processor 0x{cpu:010x}" in text, text
    assert f"smp: Brought up 1 node, {cpus} CPUs" in text
    assert re.search(r"arch_timer: cp15 timer\(s\) running at [0-9.]+MHz \(virt\)", text), text
    # The PL011 with an interrupt mapped through the GIC (its SPI from the board's wiring).
    assert re.search(r"9000000\.pl011: ttyAMA0 at MMIO 0x9000000 \(irq = [1-9][0-9]*, base_baud = 0\) is a PL011",
                     text), text
    assert "GICv3: 256 SPIs implemented" in text
    # The initrd where /chosen says it is: unpacked as an initramfs (the kernel frees its pages after).
    assert "Trying to unpack rootfs image as initramfs..." in text, text
    assert re.search(r"Freeing initrd memory: [48]K", text), text
