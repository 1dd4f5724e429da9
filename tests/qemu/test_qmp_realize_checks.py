"""Tests of patches 14-31: device types that crashed QEMU now fail with an error.

Each fixed realize path gets a working case (the device as a board would
create it) and its new errors; the board-only types are refused by name.
The sweep over every type is test_no_crash_sweep.py.
"""

from __future__ import annotations

import pytest
from qemu.qmp import ExecuteError
from qemu_fixtures import Launcher, QemuInstance

PLIC = {"hart-config": "MS,MS", "num-sources": 64, "num-priorities": 7,
        "priority-base": 0x0, "pending-base": 0x1000, "enable-base": 0x2000,
        "enable-stride": 0x80, "context-base": 0x200000, "context-stride": 0x1000,
        "aperture-size": 0x4000000}


def harts(vm: QemuInstance, count: int) -> None:
    vm.cmd("x-machine-init")
    for n in range(count):
        vm.cmd("device_add", driver="rv64-riscv-cpu", id=f"hart{n}", mhartid=n)


def arm_cpus(vm: QemuInstance, count: int) -> None:
    vm.cmd("x-machine-init")
    for n in range(count):
        vm.cmd("device_add", driver="cortex-a53-arm-cpu", id=f"cpu{n}")


def survives(vm: QemuInstance) -> None:
    vm.cmd("x-exit-preconfig")
    assert vm.cmd("query-status")["status"] == "running"


# ---- patch 14: board-only types are refused on -M none ---------------------------------

@pytest.mark.parametrize(("system", "driver", "why"), [
    ("aarch64", "ast2600-a3", "it is a whole Aspeed SoC, created by its boards"),
    ("aarch64", "bcm2837", "it is a whole BCM283x SoC"),
    ("aarch64", "imx6.gpt", "it is part of an i.MX SoC, which gives it its clock controller"),
    ("aarch64", "aspeed.timer-ast2600", "scu link"),
    ("riscv64", "riscv.sifive.u.soc", "created by the sifive_u board"),
    ("riscv64", "base-xhci", "create one of those"),
    ("riscv64", "platform-bus-device", "dynamic sysbus devices"),
])
def test_board_only_types_are_refused(qemu_launcher: Launcher, system: str, driver: str,
                                      why: str) -> None:
    vm = qemu_launcher(system, maxcpus=4)
    vm.cmd("x-machine-init")
    with pytest.raises(ExecuteError,
                       match=f"'{driver}' cannot be created on a machine built over QMP: .*{why}"):
        vm.cmd("device_add", driver=driver, id="dut")
    survives(vm)


def test_types_not_listed_are_still_created(qmp_aarch64: QemuInstance) -> None:
    vm = qmp_aarch64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="pl011", id="uart0")  # not user creatable upstream
    survives(vm)


# ---- patch 15: PLIC -------------------------------------------------------------------

def test_plic_after_its_harts(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    harts(vm, 2)
    vm.cmd("device_add", driver="riscv.sifive.plic", id="plic", **PLIC)
    vm.cmd("x-sysbus-mmio-map", device="plic", addr=0xC000000)
    survives(vm)


def test_plic_before_its_harts(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    harts(vm, 1)
    with pytest.raises(ExecuteError, match="plic: no RISC-V hart with hart ID 1: the harts "
                                           "must be realized before the PLIC"):
        vm.cmd("device_add", driver="riscv.sifive.plic", id="plic", **PLIC)
    # An unrealized PLIC can wait for its harts.
    vm.cmd("device_add", driver="riscv.sifive.plic", id="plic", realized=False, **PLIC)
    vm.cmd("device_add", driver="rv64-riscv-cpu", id="hart1", mhartid=1)
    vm.cmd("qom-set", path="plic", property="realized", value=True)
    survives(vm)


@pytest.mark.parametrize(("config", "message"), [
    (None, "plic: hart-config must be set"),
    ("MX", "plic: invalid mode 'X' in hart-config: MX"),
    ("MM", "plic: duplicate mode 'M' in config: MM"),
])
def test_plic_hart_config_errors(qmp_riscv64: QemuInstance, config: str | None,
                                 message: str) -> None:
    vm = qmp_riscv64
    harts(vm, 2)
    props = {k: v for k, v in PLIC.items() if k != "hart-config"}
    if config is not None:
        props["hart-config"] = config
    with pytest.raises(ExecuteError, match=message):
        vm.cmd("device_add", driver="riscv.sifive.plic", id="plic", **props)
    survives(vm)


# ---- patch 36: PLIC num-sources ----------------------------------------------------

@pytest.mark.parametrize("sources", [1025, 0xFFFFFFFF])
def test_plic_num_sources_beyond_its_register_map(qmp_riscv64: QemuInstance, sources: int) -> None:
    vm = qmp_riscv64
    harts(vm, 2)
    with pytest.raises(ExecuteError, match=f"plic: num-sources must be at most 1024, not {sources}"):
        vm.cmd("device_add", driver="riscv.sifive.plic", id="plic", **{**PLIC, "num-sources": sources})
    vm.cmd("device_add", driver="riscv.sifive.plic", id="plic", **{**PLIC, "num-sources": 1024})
    survives(vm)


# ---- patch 35: sysbus-memory sizes ------------------------------------------------------

@pytest.mark.parametrize("size", [2**63, 2**64 - 1])
def test_sysbus_memory_size_from_2_63_is_refused(qmp_riscv64: QemuInstance, size: int) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    with pytest.raises(ExecuteError, match=f"property 'size' must be below 2\\^63 bytes, not {size:#x}"):
        vm.cmd("device_add", driver="sysbus-memory", id="ram", size=size)
    # Below 2^63 a size the host cannot back is the allocator's error, not an abort.
    with pytest.raises(ExecuteError, match="cannot set up guest memory 'mem'"):
        vm.cmd("device_add", driver="sysbus-memory", id="ram", size=2**63 - 1)
    survives(vm)


# ---- patch 16: ACLINT software interrupts ---------------------------------------------

def test_aclint_swi_after_its_harts(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    harts(vm, 2)
    vm.cmd("device_add", driver="riscv.aclint.swi", id="swi", **{"num-harts": 2})
    vm.cmd("x-sysbus-mmio-map", device="swi", addr=0x2000000)
    survives(vm)


@pytest.mark.parametrize(("props", "message"), [
    ({"num-harts": 3}, ("no RISC-V hart with hart ID 2: the harts must be realized "
                        "before the software interrupt device")),
    ({"num-harts": 1, "hartid-base": 5}, "no RISC-V hart with hart ID 5"),
    ({"num-harts": 0}, "num-harts must be between 1 and 4095"),
])
def test_aclint_swi_errors(qmp_riscv64: QemuInstance, props: dict[str, int],
                           message: str) -> None:
    vm = qmp_riscv64
    harts(vm, 2)
    with pytest.raises(ExecuteError, match=message):
        vm.cmd("device_add", driver="riscv.aclint.swi", id="swi", **props)
    survives(vm)


# ---- patch 17: APLIC ------------------------------------------------------------------

APLIC = {"aperture-size": 0x8000, "num-irqs": 64, "iprio-mask": 7, "mmode": True}


def test_aplic_after_its_harts(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    harts(vm, 2)
    vm.cmd("device_add", driver="riscv.aplic", id="aplic", **{"num-harts": 2}, **APLIC)
    survives(vm)


def test_aplic_for_more_harts_than_exist(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    harts(vm, 2)
    with pytest.raises(ExecuteError, match="no RISC-V hart with hart ID 2: the harts must be "
                                           "realized before the APLIC"):
        vm.cmd("device_add", driver="riscv.aplic", id="aplic", **{"num-harts": 3}, **APLIC)
    survives(vm)


# ---- patch 18: IMSIC ------------------------------------------------------------------

def test_imsic_of_a_hart(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    harts(vm, 1)
    vm.cmd("device_add", driver="riscv.imsic", id="imsic-m", hartid=0, mmode=True,
           **{"num-pages": 1, "num-irqs": 64})
    vm.cmd("device_add", driver="riscv.imsic", id="imsic-s", hartid=0, mmode=False,
           **{"num-pages": 2, "num-irqs": 256})
    survives(vm)


@pytest.mark.parametrize(("props", "message"), [
    ({"hartid": 1, "num-pages": 1, "num-irqs": 64},
     "no RISC-V hart with hart ID 1: the hart must be realized before its IMSIC"),
    ({"mmode": True, "num-pages": 2, "num-irqs": 64},
     "num-pages must be between 1 and 1 for M mode"),
    ({"num-pages": 0, "num-irqs": 64}, "num-pages must be between 1 and 64 for S mode"),
    ({"num-pages": 1, "num-irqs": 100}, "num-irqs must be a multiple of 64 between 64 and 2048"),
    ({"num-pages": 1}, "num-irqs must be a multiple of 64"),
])
def test_imsic_errors(qmp_riscv64: QemuInstance, props: dict[str, object], message: str) -> None:
    vm = qmp_riscv64
    harts(vm, 1)
    with pytest.raises(ExecuteError, match=message):
        vm.cmd("device_add", driver="riscv.imsic", id="imsic", **props)
    survives(vm)


# ---- patches 19, 20: GICv3 and its ITS --------------------------------------------------

GICV3 = {"num-irq": 288, "redist-region-count": [2]}


def test_gicv3_after_its_cpus(qmp_aarch64: QemuInstance) -> None:
    vm = qmp_aarch64
    arm_cpus(vm, 2)
    vm.cmd("device_add", driver="arm-gicv3", id="gic", **{"num-cpu": 2}, **GICV3)
    survives(vm)


def test_gicv3_for_more_cpus_than_exist(qmp_aarch64: QemuInstance) -> None:
    vm = qmp_aarch64
    arm_cpus(vm, 1)
    with pytest.raises(ExecuteError, match="num-cpu is 2 but there is no Arm CPU with index 1: "
                                           "the CPUs must be realized before the GIC"):
        vm.cmd("device_add", driver="arm-gicv3", id="gic", **{"num-cpu": 2}, **GICV3)
    survives(vm)


def test_its_without_its_gic(qmp_aarch64: QemuInstance) -> None:
    vm = qmp_aarch64
    arm_cpus(vm, 1)
    with pytest.raises(ExecuteError, match="the parent-gicv3 link must be set"):
        vm.cmd("device_add", driver="arm-gicv3-its", id="its")
    survives(vm)


def test_its_before_its_gic_is_realized(qmp_aarch64: QemuInstance) -> None:
    vm = qmp_aarch64
    arm_cpus(vm, 1)
    vm.cmd("device_add", driver="arm-gicv3", id="gic", realized=False,
           **{"num-cpu": 1, "num-irq": 288, "redist-region-count": [1]})
    with pytest.raises(ExecuteError, match="must be realized before the ITS"):
        vm.cmd("device_add", driver="arm-gicv3-its", id="its",
               **{"parent-gicv3": "/machine/peripheral/gic"})
    vm.cmd("qom-set", path="gic", property="realized", value=True)
    survives(vm)


def test_its_of_a_gic_without_lpis(qmp_aarch64: QemuInstance) -> None:
    vm = qmp_aarch64
    arm_cpus(vm, 1)
    vm.cmd("device_add", driver="arm-gicv3", id="gic",
           **{"num-cpu": 1, "num-irq": 288, "redist-region-count": [1]})
    with pytest.raises(ExecuteError, match="Physical LPI not supported by CPU 0"):
        vm.cmd("device_add", driver="arm-gicv3-its", id="its",
               **{"parent-gicv3": "/machine/peripheral/gic"})
    survives(vm)


# ---- patch 21: Exynos4210 GIC -------------------------------------------------------

def test_exynos4210_gic_num_cpu(qmp_aarch64: QemuInstance) -> None:
    vm = qmp_aarch64
    vm.cmd("x-machine-init")
    with pytest.raises(ExecuteError, match="num-cpu must be at most 2"):
        vm.cmd("device_add", driver="exynos4210.gic", id="gic", **{"num-cpu": 3})
    vm.cmd("device_add", driver="exynos4210.gic", id="gic", **{"num-cpu": 2})
    survives(vm)


# ---- patch 22: generic-loader ---------------------------------------------------------

def test_loader_without_its_file_then_reset(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    harts(vm, 1)
    with pytest.raises(ExecuteError, match="Cannot load specified image .*missing.elf"):
        vm.cmd("device_add", driver="loader", id="fw", file=str(vm.workdir / "missing.elf"))
    survives(vm)
    vm.cmd("system_reset")
    assert vm.cmd("query-status")["status"] == "running"


# ---- patches 23, 24: CPUs created inside a device ---------------------------------------

def test_hart_array_needs_a_cpu_type(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    with pytest.raises(ExecuteError, match="cpu-type must name a RISC-V CPU type"):
        vm.cmd("device_add", driver="riscv.hart_array", id="harts", **{"num-harts": 2})
    with pytest.raises(ExecuteError, match="cpu-type must name a RISC-V CPU type"):
        vm.cmd("device_add", driver="riscv.hart_array", id="harts",
               **{"num-harts": 2, "cpu-type": "cortex-a53-arm-cpu"})
    survives(vm)


def test_hart_array_counts_the_cpus_already_there(qemu_launcher: Launcher) -> None:
    vm = qemu_launcher("riscv64", maxcpus=3)
    harts(vm, 2)
    with pytest.raises(ExecuteError, match=r"2 harts would make 4 CPUs, more than maxcpus \(3\)"):
        vm.cmd("device_add", driver="riscv.hart_array", id="harts",
               **{"num-harts": 2, "cpu-type": "rv64-riscv-cpu", "hartid-base": 2})
    vm.cmd("device_add", driver="riscv.hart_array", id="harts",
           **{"num-harts": 1, "cpu-type": "rv64-riscv-cpu", "hartid-base": 2})
    survives(vm)
    assert len(vm.cmd("query-cpus-fast")) == 3


def test_soc_creating_cpus_beyond_maxcpus_exits_with_the_reason(qemu_launcher: Launcher) -> None:
    # allwinner-h3 creates 4 CPUs with &error_fatal: QEMU exits with the TCG
    # check's message (it aborted on an assertion in tcg_register_thread before).
    vm = qemu_launcher("aarch64", maxcpus=2)
    vm.cmd("x-machine-init")
    with pytest.raises(Exception):  # noqa: B017 (QEMU exits: the connection drops)
        vm.cmd("device_add", driver="allwinner-h3", id="soc", **{"ram-size": 1024})
    assert vm.wait_exit(timeout=30) == 1
    assert "cannot create CPU number 3: maxcpus is 2; raise -smp maxcpus" in vm.stderr_text()


def test_soc_creating_cpus_within_maxcpus(qemu_launcher: Launcher) -> None:
    vm = qemu_launcher("aarch64", maxcpus=4)
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="allwinner-h3", id="soc", **{"ram-size": 1024})
    survives(vm)
    assert len(vm.cmd("query-cpus-fast")) == 4


# ---- patches 25-31: what the type-database probe found ----------------------------------
# machinedesc/qemu/probe.py realizes each type with the properties real boards
# set (data/probe_properties.yaml) and its memory links set to system memory;
# these cases killed QEMU there (SIGSEGV, SIGABRT, or exit(1) from realize).

SYSTEM_MEMORY = "/machine/unattached/system[0]"


@pytest.mark.parametrize(("driver", "cpus", "props", "message"), [
    # patch 25: SIGSEGV reading CPU 0
    ("a15mpcore_priv", 0, {"num-irq": 64},
     "num-cpu is 1 but there is no Arm CPU with index 0: the CPUs must be realized "
     "before the Cortex-A15MPCore private peripherals"),
    ("a15mpcore_priv", 1, {"num-irq": 64, "num-cpu": 2}, "no Arm CPU with index 1"),
    ("a15mpcore_priv", 0, {"num-irq": 64, "num-cpu": 0}, "num-cpu must be at least 1"),
    # patch 26: SIGSEGV taking the type name of CPU 0
    ("a9mpcore_priv", 0, {"num-irq": 64},
     "there is no CPU: the Cortex-A9 CPUs must be realized before the Cortex-A9MPCore "
     "private peripherals"),
    ("a9mpcore_priv", 1, {"num-irq": 64}, "Cortex-A9MPCore peripheral can only use Cortex-A9 CPU"),
    # patch 27: SIGABRT, error_setv: *errp == NULL
    ("iotkit", 0, {"memory": SYSTEM_MEMORY}, "MAINCLK clock was not connected"),
    ("sse-200", 0, {"memory": SYSTEM_MEMORY}, "MAINCLK clock was not connected"),
    ("sse-300", 0, {"memory": SYSTEM_MEMORY}, "MAINCLK clock was not connected"),
    # patches 28, 29: SIGABRT, object_finalize: obj->parent == NULL
    ("tz-mpc", 0, {"downstream": SYSTEM_MEMORY},
     "MPC 'downstream' size 0xffffffffffffffff is not a multiple of 0x400 bytes"),
    # patches 30, 31: exit(1) from realize (the default ram-size is 256 * MiB, in MiB)
    ("allwinner-h3-dramc", 0, {},
     "ram-size 268435456 MiB is not supported: it must be 256, 512, 1024 or 2048"),
    ("allwinner-h3-dramc", 0, {"ram-size": 300}, "ram-size 300 MiB is not supported"),
    ("allwinner-h3", 0, {}, "ram-size 268435456 MiB is not supported"),
])
def test_probe_crashes_are_errors(qemu_launcher: Launcher, driver: str, cpus: int,
                                  props: dict[str, object], message: str) -> None:
    vm = qemu_launcher("aarch64", maxcpus=8)
    arm_cpus(vm, cpus)
    with pytest.raises(ExecuteError, match=message):
        vm.cmd("device_add", driver=driver, id="dut", **props)
    survives(vm)
    assert len(vm.cmd("query-cpus-fast")) == cpus  # allwinner-h3 failed before its CPUs


def test_probe_crash_the_way_the_probe_realizes(qmp_aarch64: QemuInstance) -> None:
    # The probe's path: created unrealized, link set with qom-set, then realized.
    vm = qmp_aarch64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="tz-mpc", id="mpc", realized=False)
    vm.cmd("qom-set", path="mpc", property="downstream", value=SYSTEM_MEMORY)
    with pytest.raises(ExecuteError, match="is not a multiple of 0x400 bytes"):
        vm.cmd("qom-set", path="mpc", property="realized", value=True)
    assert vm.cmd("query-status")["status"] == "prelaunch"
    with pytest.raises(ExecuteError, match="mpc"):  # patch 7: still unrealized
        vm.cmd("x-exit-preconfig")


def test_a15mpcore_after_its_cpus(qmp_aarch64: QemuInstance) -> None:
    vm = qmp_aarch64
    arm_cpus(vm, 2)
    vm.cmd("device_add", driver="a15mpcore_priv", id="mpcore", **{"num-irq": 64, "num-cpu": 2})
    vm.cmd("x-sysbus-mmio-map", device="mpcore", addr=0x2C000000)
    survives(vm)


def test_a9mpcore_after_its_cpu(qmp_aarch64: QemuInstance) -> None:
    vm = qmp_aarch64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="cortex-a9-arm-cpu", id="cpu0")
    vm.cmd("device_add", driver="a9mpcore_priv", id="mpcore", **{"num-irq": 64})
    survives(vm)


def test_tz_mpc_with_a_downstream_of_whole_blocks(qmp_aarch64: QemuInstance) -> None:
    vm = qmp_aarch64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="sysbus-memory", id="sram", size=0x10000)
    vm.cmd("device_add", driver="tz-mpc", id="mpc",
           downstream="/machine/peripheral/sram/mem[0]")
    survives(vm)


def test_allwinner_h3_dramc_with_a_supported_size(qmp_aarch64: QemuInstance) -> None:
    vm = qmp_aarch64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="allwinner-h3-dramc", id="dramc", **{"ram-size": 1024})
    survives(vm)
