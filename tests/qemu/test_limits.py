"""The ``limits:`` of machinedesc/qemu/data/qemu_types.yaml are safe: QEMU survives both bounds.

``validate`` refuses a property value outside its type's limits because QEMU
aborts or crashes there (bench/limit_sweep.py found them).  A limit is only
useful if every value inside it is safe, so this test creates each limited
type (a representative of each pattern) on each system that has it, the
way the type-database probe does (data/probe_properties.yaml properties,
memory-region links set to system memory, two CPUs when its realize needs
them), with the property at its lowest and at its highest bound, one
``-M none -preconfig`` QEMU each: errors are fine, QEMU must still answer
``query-status`` after ``x-exit-preconfig`` (CPUs paused: ``-S``).  About 80 QEMUs:
a few seconds.

``FIXED`` lists the values the sweep found that no single-property limit can
refuse exactly (a combination of properties, a set of values, or a hart ID a
board may well use), which patches 37-43 of qemu/patches fixed in QEMU: each
either builds or fails ``device_add`` with QEMU's error, and QEMU lives on
(the binaries before those patches died on every one).
"""

from __future__ import annotations

import fnmatch
import json
import re
import signal
import subprocess
from importlib import resources
from typing import Any

import pytest
from qemu.qmp import ExecuteError
from qemu_fixtures import Launcher
from ruamel.yaml import YAML

SYSTEMS = ("riscv64", "aarch64")
SYSTEM_MEMORY = "/machine/unattached/system[0]"
DUT = "/machine/peripheral/dut"
# What a limit needs to be exercised at all: a hart array with no harts checks no hart ID.
EXTRA = {"riscv.hart_array": {"num-harts": 1}}
# The types tested for a pattern (else its first type): a plain and a vendor RISC-V CPU (their setters differ).
REPRESENTATIVES = {"*-riscv-cpu": ("rv64-riscv-cpu", "sifive-u54-riscv-cpu")}


# (system, type, properties over the probe's, QEMU's error or None when it builds): the crashes patches 37-43 fixed.
FIXED: list[tuple[str, str, dict[str, Any], str | None]] = [
    # Patch 37: the implied-extension bitmaps, sized by -smp 1, were indexed by hart ID (SIGSEGV).
    ("riscv64", "rv64-riscv-cpu", {"mhartid": 0x10000000}, None),
    ("riscv64", "rv64-riscv-cpu", {"mhartid": 0xFFFFFFFFFFFFFFFF}, None),
    ("riscv64", "sifive-u54-riscv-cpu", {"mhartid": 3000}, None),
    ("riscv64", "riscv.hart_array", {"num-harts": 2, "hartid-base": 0x10000000}, None),
    # Patch 38: a flash of 2**32 bytes or a multiple was truncated to 0 (find_ram_offset asserted).
    ("aarch64", "cfi.pflash02", {"num-blocks": 0x10000000, "sector-length": 0x10000},
     r'flash size \("num-blocks" \* "sector-length"\) 0x100000000000 bytes: it must be 1 byte to 4 GiB - 1'),
    ("aarch64", "cfi.pflash02", {"num-blocks": 0x10000, "sector-length": 0x10000}, r"flash size .* 0x100000000 bytes"),
    # Patch 39: width / device-width is 0 and the CFI table divides by it (SIGFPE).
    ("aarch64", "cfi.pflash01", {"width": 1, "device-width": 2},
     r'"device-width" \(2\) is larger than "width" \(1\)'),
    ("aarch64", "cfi.pflash01", {"width": 0, "device-width": 1}, r'"device-width" \(1\) is larger than "width" \(0\)'),
    # Patch 40: the first reset asserted on a did0 of an unknown version or class.
    ("aarch64", "stellaris-sys", {"did0": 0xFFFFFFFF}, r"did0 0xffffffff is not supported: its version"),
    ("aarch64", "stellaris-sys", {"did0": 0x10020000}, r"did0 0x10020000 is not supported"),
    # Patches 41-42: exit(1) from the DRAM controller's realize.
    ("aarch64", "allwinner-r40-dramc", {"ram-size": 300},
     r"ram-size 300 MiB is not supported: it must be 256, 512 or 1024 \(MiB\)"),
    ("aarch64", "allwinner-r40", {"ram-size": 2048}, r"ram-size 2048 MiB is not supported"),
    # Patch 43: the dma-mr link the BCM283x peripherals add was fetched with error_abort.
    ("aarch64", "bcm2835-fb", {"vcram-base": 0x3C000000}, r"no dma-mr link: the framebuffer works only inside"),
]


def _typedb(system: str) -> dict[str, Any]:
    text = resources.files("machinedesc.qemu.data").joinpath(f"typedb-{system}.json").read_text(encoding="utf-8")
    types: dict[str, Any] = json.loads(text)["types"]
    return types


def _cases() -> list[tuple[str, str, str, int]]:
    """(system, type, property, value): both bounds of each limit, one type per pattern and system."""
    text = resources.files("machinedesc.qemu.data").joinpath("qemu_types.yaml").read_text(encoding="utf-8")
    table = YAML(typ="safe").load(text)
    out = []
    for system in SYSTEMS:
        db = _typedb(system)
        for key, entry in table.items():
            limits = (entry or {}).get("limits") or {}
            names = sorted(n for n, info in db.items() if fnmatch.fnmatchcase(n, key) and info.get("creatable"))
            if not limits or not names:
                continue
            chosen = [n for n in (key, *REPRESENTATIVES.get(key, ())) if n in names] or names[:1]
            for name in chosen:
                for prop, (lo, hi, _why) in limits.items():
                    out += [(system, name, prop, int(lo)), (system, name, prop, int(hi))]
    return out


CASES = _cases()


def test_every_limit_has_a_case() -> None:
    """Each limited property is exercised on some system (a renamed type would drop out silently)."""
    covered = {(t, p) for _s, t, p, _v in CASES}
    assert len(covered) >= 15, covered


@pytest.mark.parametrize(("system", "type_name", "prop", "value"), CASES,
                         ids=[f"{s}-{t}-{p}-{v:#x}" for s, t, p, v in CASES])
def test_limit_bound_does_not_kill_qemu(qemu_launcher: Launcher, system: str, type_name: str, prop: str,
                                        value: int) -> None:
    info = _typedb(system)[type_name]
    vm = qemu_launcher(system, maxcpus=64, extra_args=["-S"])  # CPUs paused, as in the probe
    try:
        vm.cmd("x-machine-init")
        if "cpus" in (info.get("needs") or []):
            for n in range(2):
                extra = {"mhartid": n} if system == "riscv64" else {}
                vm.cmd("device_add", driver="rv64-riscv-cpu" if system == "riscv64" else "cortex-a53-arm-cpu",
                       id=f"cpu{n}", **extra)
        props = {**(info.get("probed_with") or {}), **EXTRA.get(type_name, {}), prop: value}
        links = [p for p, i in info.get("properties", {}).items() if i.get("type") == "link<memory-region>"]
        # (not vm.cmd: pflash's property 'name' would clash with its argument 'name')
        added = "error" not in vm.qmp.cmd_raw("device_add", {**props, "driver": type_name, "id": "dut",
                                                             "realized": False})
        try:
            for link in links if added else []:
                vm.cmd("qom-set", path=DUT, property=link, value=SYSTEM_MEMORY)
            if added:
                vm.cmd("qom-set", path=DUT, property="realized", value=True)
        except ExecuteError:
            pass
        try:
            vm.cmd("x-exit-preconfig")
        except ExecuteError:
            pass
        try:
            vm.cmd("query-status")
            return
        except Exception:  # noqa: BLE001 (QEMU died: say how below)
            pass
        try:
            status = vm.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            status = None
        lines = vm.stderr_text().strip().splitlines()
        how = ("hung" if status is None else f"exit status {status}" if status >= 0
               else signal.Signals(-status).name)
        pytest.fail(f"{type_name} {prop}={value:#x} (a bound of its qemu_types.yaml limits) killed "
                    f"qemu-system-{system}: {how}: {lines[-1] if lines else ''}")
    finally:
        vm.kill()


def _how_it_died(vm: Any) -> str:
    """How QEMU ended (it did not answer): signal, exit status or hang, and its last line of stderr."""
    try:
        status = vm.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        status = None
    lines = vm.stderr_text().strip().splitlines()
    how = "hung" if status is None else f"exit status {status}" if status >= 0 else signal.Signals(-status).name
    return f"{how}: {lines[-1] if lines else ''}"


@pytest.mark.parametrize(("system", "type_name", "props", "error"), FIXED,
                         ids=[f"{s}-{t}-{'-'.join(f'{k}={v:#x}' for k, v in p.items())}" for s, t, p, _e in FIXED])
def test_fixed_crash_is_built_or_refused(qemu_launcher: Launcher, system: str, type_name: str, props: dict[str, Any],
                                         error: str | None) -> None:
    info = _typedb(system)[type_name]
    vm = qemu_launcher(system, maxcpus=64, extra_args=["-S"])
    try:
        vm.cmd("x-machine-init")
        args = {**(info.get("probed_with") or {}), **props, "driver": type_name, "id": "dut"}
        if type_name == "riscv.hart_array":
            args["cpu-type"] = "rv64-riscv-cpu"
        try:
            reply = vm.qmp.cmd_raw("device_add", args)
            vm.cmd("x-exit-preconfig")  # stellaris-sys died at this first reset
            status = vm.cmd("query-status")
        except Exception:  # noqa: BLE001 (QEMU died: say how below)
            pytest.fail(f"{type_name} {props} killed qemu-system-{system}: {_how_it_died(vm)}")
        assert status["status"] == "prelaunch", status
        if error is None:
            assert "error" not in reply, reply
        else:
            assert re.search(error, reply.get("error", {}).get("desc", "")), reply
    finally:
        vm.kill()
