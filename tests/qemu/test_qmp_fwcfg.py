"""Tests of fw_cfg_mem created over QMP (QEMU patches 33 and 34): its DMA works, data_width is checked.

The guest side is QEMU's qtest protocol on a socket of our own (``-accel
qtest``): memory writes and reads as a guest driver would do them, without
firmware, so that the test pins the device's behaviour, not a driver's.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterator

import pytest
from qemu.qmp import ExecuteError
from qemu_fixtures import Launcher, QemuInstance

RAM = 0x4000_0000
FW_CFG = 0x0902_0000  # hw/arm/virt.c's VIRT_FW_CFG: data at +0, control at +8, DMA at +16
DMA_SELECT, DMA_READ = 0x08, 0x02  # docs/specs/fw_cfg.rst, FWCfgDmaAccess.control
FW_CFG_SIGNATURE = 0x0000


class Qtest:
    """The qtest protocol over the socket QEMU connected to: one command, one answer line."""

    def __init__(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        self._file = conn.makefile("rw")

    def __call__(self, line: str) -> str:
        self._file.write(line + "\n")
        self._file.flush()
        answer = self._file.readline().strip()
        assert answer.startswith("OK"), f"qtest {line!r}: {answer!r}"
        return answer.removeprefix("OK").strip()


@pytest.fixture
def aarch64_qtest(qemu_launcher: Launcher,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[QemuInstance, socket.socket]]:
    """qemu-system-aarch64 -M none -preconfig -accel qtest, with its qtest socket accepted lazily."""
    path = tmp_path_factory.mktemp("qt") / "qtest.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)
    try:
        vm = qemu_launcher("aarch64", extra_args=["-accel", "qtest", "-qtest", f"unix:{path}"])
        yield vm, listener
    finally:
        listener.close()


def test_fw_cfg_mem_without_data_width_is_refused(qmp_aarch64: QemuInstance) -> None:
    vm = qmp_aarch64
    vm.cmd("x-machine-init")
    with pytest.raises(ExecuteError, match=r"data_width must be 1, 2, 4 or 8 \(bytes\), not 4294967295"):
        vm.cmd("device_add", driver="fw_cfg_mem", id="fw")
    with pytest.raises(ExecuteError, match="data_width must be 1, 2, 4 or 8"):
        vm.cmd("device_add", driver="fw_cfg_mem", id="fw", data_width=3)


def test_fw_cfg_mem_dma_reads_the_signature_into_guest_memory(
        aarch64_qtest: tuple[QemuInstance, socket.socket]) -> None:
    vm, listener = aarch64_qtest
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="cortex-a53-arm-cpu", id="cpu0")  # qtest accesses memory as a CPU
    vm.cmd("device_add", driver="sysbus-memory", id="ram", size=0x10000)
    vm.cmd("x-sysbus-mmio-map", device="ram", addr=RAM)
    vm.cmd("device_add", driver="fw_cfg_mem", id="fw", data_width=8)  # dma_enabled: the default
    for region, addr in enumerate((FW_CFG + 8, FW_CFG, FW_CFG + 16)):
        vm.cmd("x-sysbus-mmio-map", device="fw", mmio=region, addr=addr)
    vm.cmd("x-exit-preconfig")
    conn, _ = listener.accept()
    with conn:
        qtest = Qtest(conn)
        # A FWCfgDmaAccess (big-endian: control, length, address) at RAM: select the
        # signature and read its 4 bytes to RAM + 0x100.
        access = struct.pack(">IIQ", FW_CFG_SIGNATURE << 16 | DMA_SELECT | DMA_READ, 4, RAM + 0x100)
        qtest(f"write {RAM:#x} 8 0x{access[:8].hex()}")
        qtest(f"write {RAM + 8:#x} 8 0x{access[8:].hex()}")
        # The DMA register is big-endian; the low half starts the transfer. Before
        # patch 33 this was a SIGSEGV: no DMA address space.
        qtest(f"write {FW_CFG + 16:#x} 4 0x{struct.pack('>I', 0).hex()}")
        qtest(f"write {FW_CFG + 20:#x} 4 0x{struct.pack('>I', RAM).hex()}")
        assert bytes.fromhex(qtest(f"read {RAM + 0x100:#x} 4").removeprefix("0x")) == b"QEMU"
        assert qtest(f"read {RAM:#x} 4") == "0x00000000"  # control: done, no error bit
    assert vm.process.poll() is None, "QEMU died"
