"""Sweep: no device type may crash the patched QEMU (issue 10, QEMU side).

Patch 3 of the series lets ``-M none`` create every concrete device type in
the ``initialized`` phase, so the series owns what any of them does there.
For every device type of each binary (``qom-list-types`` with
``implements=device``, ``abstract=false``) the sweep starts a fresh
``-M none -smp 1,maxcpus=4 -preconfig`` QEMU, runs ``x-machine-init``,
``device_add driver=<type> id=dut`` with default properties, ``x-exit-preconfig``
and ``query-status``.  Errors are expected and fine; QEMU must still be
running afterwards (or have exited by itself with a status), never be killed
by a signal (SIGSEGV, SIGABRT from an assertion) nor hang.

One QEMU per type (a start takes some tens of milliseconds), three at a time:
the sweep of both binaries takes about two minutes on two cores.

``KNOWN_CRASHES`` lists the types that still crash, each with the reason; the
test fails when an unlisted type crashes and when a listed one stops
crashing, so the list stays true.  It is empty: keep it that way.

A second sweep sets the CPU count properties of every type that has one
(``num-harts``, ``num-cpu``, ``num-cpus`` to 3, ``hartid`` to 2) on a machine
with 2 CPUs.  A third creates every type the way the type-database probe
(machinedesc/qemu/probe.py) does: with the properties of
data/probe_properties.yaml and its memory-region links set to system memory,
without CPUs and after two CPUs, CPUs paused (``-S``, as in the probe); there
QEMU exiting by itself counts as dying too.  The last tests run the other inconsistent CPU counts of issue 10
(CPUs created inside a device beyond ``maxcpus``, a loader without its file),
each of which crashed QEMU before patches 14-24.

Run it against a development build of the series with
``MACHINEDESC_TEST_QEMU_PREFIX=<dir with bin/qemu-system-*>`` (see conftest.py).
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from qemu.qmp import ExecuteError
from qemu_fixtures import Launcher, QemuInstance

from machinedesc.qemu.probe import probe_properties

SYSTEMS = ("riscv64", "aarch64")
MAXCPUS = 4
WORKERS = 3  # QEMU start-up is mostly waiting; three keep two cores busy
HANG_TIMEOUT = 20.0

# (sweep, system, type) -> why it still crashes; sweep is "defaults",
# "cpu-count", "probe-0-cpus" or "probe-2-cpus".  The sweep fails if one of these stops crashing: then delete it.
KNOWN_CRASHES: dict[tuple[str, str, str], str] = {}


@contextmanager
def _instance(launcher: Launcher, system: str, maxcpus: int = MAXCPUS) -> Iterator[QemuInstance]:
    vm = launcher(system, maxcpus=maxcpus)
    try:
        yield vm
    finally:
        vm.kill()


def device_types(launcher: Launcher, system: str) -> list[str]:
    """Every concrete device type of the binary."""
    with _instance(launcher, system) as vm:
        types = vm.cmd("qom-list-types", implements="device", abstract=False)
    return sorted(t["name"] for t in types)


def add_cpus(vm: QemuInstance, system: str, count: int) -> None:
    """Create COUNT CPUs (hart IDs / CPU indexes 0..COUNT-1)."""
    for n in range(count):
        if system == "riscv64":
            vm.cmd("device_add", driver="rv64-riscv-cpu", id=f"cpu{n}", mhartid=n)
        else:
            vm.cmd("device_add", driver="cortex-a53-arm-cpu", id=f"cpu{n}")


def try_type(launcher: Launcher, system: str, type_name: str,
             props: dict[str, Any] | None = None, cpus: int = 0,
             maxcpus: int = MAXCPUS, exit_is_death: bool = False,
             extra_args: tuple[str, ...] = ()) -> str | None:
    """Create TYPE_NAME with PROPS after CPUS CPUs; return how QEMU died, or None.

    QEMU exiting by itself with a status counts as dying only with EXIT_IS_DEATH.
    """
    vm = launcher(system, maxcpus=maxcpus, extra_args=extra_args)
    try:
        vm.cmd("x-machine-init")
        add_cpus(vm, system, cpus)
        for command, args in (("device_add", {"driver": type_name, "id": "dut", **(props or {})}),
                              ("x-exit-preconfig", {}),
                              ("query-status", {})):
            try:
                vm.cmd(command, **args)
            except ExecuteError:
                continue
            except Exception:  # noqa: BLE001 (the connection died with QEMU: see below)
                break
        try:
            status = vm.process.wait(timeout=0.2) if vm.process.poll() is None else vm.process.returncode
        except subprocess.TimeoutExpired:
            status = None
        if status is None:
            # Still running: it must still answer.
            try:
                vm.cmd("query-status")
                return None
            except Exception:  # noqa: BLE001
                try:
                    status = vm.process.wait(timeout=HANG_TIMEOUT)
                except subprocess.TimeoutExpired:
                    return "hung: no answer to query-status"
        if status >= 0 and not exit_is_death:
            return None
        lines = vm.stderr_text().strip().splitlines()
        how = f"exit status {status}" if status >= 0 else signal.Signals(-status).name
        return f"{how}: {lines[-1] if lines else ''}".strip()
    finally:
        vm.kill()


def sweep(launcher: Launcher, system: str, cases: dict[str, dict[str, Any]],
          cpus: int = 0, **how: Any) -> dict[str, str]:
    """Run try_type on each type (with its properties) in parallel; return the crashers."""
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = dict(zip(cases, pool.map(
            lambda t: try_type(launcher, system, t, cases[t], cpus, **how), cases), strict=True))
    return {t: why for t, why in results.items() if why is not None}


def check(name: str, system: str, total: int, crashed: dict[str, str], what: str) -> None:
    """Fail on crashes not in KNOWN_CRASHES, and on listed types that no longer crash."""
    known = {t for (n, s, t) in KNOWN_CRASHES if (n, s) == (name, system)}
    new = {t: why for t, why in crashed.items() if t not in known}
    fixed = sorted(known - set(crashed))
    report = "\n".join(f"  {t}: {why}" for t, why in sorted(new.items()))
    assert not new, f"{len(new)} of {total} {system} device types crash QEMU {what}:\n{report}"
    assert not fixed, f"listed in KNOWN_CRASHES but no longer crash (delete them): {fixed}"


@pytest.mark.parametrize("system", SYSTEMS)
def test_no_device_type_crashes_qemu(qemu_launcher: Launcher, system: str) -> None:
    types = device_types(qemu_launcher, system)
    assert len(types) > 100, types
    crashed = sweep(qemu_launcher, system, {t: {} for t in types})
    check("defaults", system, len(types), crashed, "with default properties")


# Properties that give the number (or the ID) of the CPUs or harts a device
# serves, with a value that names a CPU that does not exist.
CPU_COUNT_PROPERTIES = {"num-harts": 3, "num-cpu": 3, "num-cpus": 3, "hartid": 2}


def properties(launcher: Launcher, system: str, types: list[str]) -> dict[str, dict[str, str]]:
    """Type -> property name -> QEMU property type, for each of TYPES."""
    # device-list-properties is refused in preconfig: ask a QEMU that is not in it.
    vm = launcher(system, preconfig=False, extra_args=["-S"])
    try:
        return {t: {p["name"]: p["type"] for p in vm.cmd("device-list-properties", typename=t)}
                for t in types}
    finally:
        vm.kill()


@pytest.mark.parametrize("system", SYSTEMS)
def test_no_cpu_count_crashes_qemu(qemu_launcher: Launcher, system: str) -> None:
    """Every type with a CPU count property, set to 3 on a machine with 2 CPUs."""
    types = device_types(qemu_launcher, system)
    cases: dict[str, dict[str, Any]] = {}
    for t, names in properties(qemu_launcher, system, types).items():
        props = {k: v for k, v in CPU_COUNT_PROPERTIES.items() if k in names}
        if props:
            cases[t] = props
    assert cases, "no type with a CPU count property"
    crashed = sweep(qemu_launcher, system, cases, cpus=2)
    check("cpu-count", system, len(cases), crashed, "with a CPU count of 3 (or hart ID 2) and 2 CPUs")


# What the type-database probe (machinedesc/qemu/probe.py) gives a type whose
# realize fails: the properties real boards set (data/probe_properties.yaml),
# its memory-region links set to system memory, and two CPUs.
SYSTEM_MEMORY = "/machine/unattached/system[0]"


@pytest.mark.parametrize("cpus", [0, 2])
@pytest.mark.parametrize("system", SYSTEMS)
def test_no_probe_attempt_kills_qemu(qemu_launcher: Launcher, system: str, cpus: int) -> None:
    """Every type given its probe properties and memory links as the probe does.

    Without CPUs every type is created (most with default properties); after
    two CPUs, the types given something.

    Here QEMU exiting by itself counts too: exit() in a realize ends QEMU as
    surely as a signal (allwinner-h3-dramc did it before patch 30).  The CPUs
    stay paused (``-S``), as in the probe: what is tested is creating and
    realizing the type, not what its CPUs do without a program (nrf51-soc's
    Cortex-M0, given system memory, would run from empty flash into a lockup).
    """
    types = device_types(qemu_launcher, system)
    cases: dict[str, dict[str, Any]] = {}
    for t, props in properties(qemu_launcher, system, types).items():
        given = probe_properties(t)
        given.update({p: SYSTEM_MEMORY for p, kind in props.items() if kind == "link<memory-region>"})
        if given or not cpus:
            cases[t] = given
    assert len(cases) > 10, cases
    crashed = sweep(qemu_launcher, system, cases, cpus, maxcpus=64, exit_is_death=True,
                    extra_args=("-S",))
    check(f"probe-{cpus}-cpus", system, len(cases), crashed,
          f"given probe properties and memory links after {cpus} CPUs")


# ---- inconsistent CPU counts ----------------------------------------------------------

def _harts(vm: QemuInstance, count: int) -> None:
    vm.cmd("x-machine-init")
    for n in range(count):
        vm.cmd("device_add", driver="rv64-riscv-cpu", id=f"hart{n}", mhartid=n)


def _still_alive(vm: QemuInstance) -> None:
    """QEMU survives x-exit-preconfig and answers afterwards."""
    vm.cmd("x-exit-preconfig")
    assert vm.cmd("query-status")["status"] == "running"
    assert vm.process.poll() is None


def test_aclint_swi_for_more_harts_than_exist(qemu_launcher: Launcher) -> None:
    with _instance(qemu_launcher, "riscv64") as vm:
        _harts(vm, 2)
        with pytest.raises(ExecuteError, match="no RISC-V hart with hart ID 2"):
            vm.cmd("device_add", driver="riscv.aclint.swi", id="swi", **{"num-harts": 3})
        _still_alive(vm)


def test_plic_for_more_harts_than_exist(qemu_launcher: Launcher) -> None:
    with _instance(qemu_launcher, "riscv64") as vm:
        _harts(vm, 1)
        with pytest.raises(ExecuteError, match="no RISC-V hart with hart ID 1"):
            vm.cmd("device_add", driver="riscv.sifive.plic", id="plic",
                   **{"hart-config": "MS,MS", "num-sources": 8, "num-priorities": 7})
        _still_alive(vm)


def test_hart_array_beyond_maxcpus(qemu_launcher: Launcher) -> None:
    with _instance(qemu_launcher, "riscv64", maxcpus=1) as vm:
        vm.cmd("x-machine-init")
        with pytest.raises(ExecuteError, match="maxcpus"):
            vm.cmd("device_add", driver="riscv.hart_array", id="harts",
                   **{"num-harts": 2, "cpu-type": "rv64-riscv-cpu"})
        _still_alive(vm)


def test_hart_array_within_maxcpus(qemu_launcher: Launcher) -> None:
    with _instance(qemu_launcher, "riscv64", maxcpus=2) as vm:
        vm.cmd("x-machine-init")
        vm.cmd("device_add", driver="riscv.hart_array", id="harts",
               **{"num-harts": 2, "cpu-type": "rv64-riscv-cpu"})
        _still_alive(vm)
        assert len(vm.cmd("query-cpus-fast")) == 2


def test_loader_without_its_file(qemu_launcher: Launcher) -> None:
    with _instance(qemu_launcher, "riscv64") as vm:
        _harts(vm, 1)
        with pytest.raises(ExecuteError, match="no-such-firmware.elf"):
            vm.cmd("device_add", driver="loader", id="fw",
                   file=str(vm.workdir / "no-such-firmware.elf"))
        _still_alive(vm)
