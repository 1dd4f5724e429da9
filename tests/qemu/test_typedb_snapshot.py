"""The shipped type databases are what the built patched QEMU reports, and introspection works end to end.

``machinedesc/qemu/data/typedb-SYSTEM.json`` is made by ``machinedesc qemu
introspect --snapshot`` from the pinned patched QEMU.  These tests introspect
the built binaries again and compare: the types and properties half exactly
(~1-2 s per binary); the probe (each type instantiated in its own QEMU:
~20 s for riscv64, ~50 s for aarch64 on two idle cores) for every type as well,
so a change to the patch series that changes a device's lines or regions
fails here until the snapshots are regenerated.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from machinedesc.errors import UsageError
from machinedesc.qemu import introspect, probe, typedb

SYSTEMS = ("riscv64", "aarch64")
REGENERATE = "regenerate the snapshots: machinedesc qemu introspect --snapshot (and read the diff)"
#: The fields only the probe fills.
PROBED = ("creatable", "lines_after", "mmio", "needs", "note", "probed_with", "cpus_created")


def _shipped(system: str) -> typedb.TypeDatabase:
    """The shipped snapshot.  It may come from another build of the same series (a build is not
    byte-reproducible): the contents are compared, not the binary's hash."""
    db = typedb.snapshot(system)
    assert db is not None
    return db


def _diff(expected: dict[str, Any], got: dict[str, Any], limit: int = 15) -> str:
    names = sorted(set(expected) | set(got))
    lines = [f"  {n}:\n    shipped:  {json.dumps(expected.get(n), sort_keys=True)[:400]}\n"
             f"    measured: {json.dumps(got.get(n), sort_keys=True)[:400]}"
             for n in names if expected.get(n) != got.get(n)]
    return f"{len(lines)} types differ ({REGENERATE}):\n" + "\n".join(lines[:limit])


def _static(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in PROBED}


@pytest.mark.parametrize("system", SYSTEMS)
def test_types_and_properties_are_what_qemu_reports(qemu_binary: Callable[[str], Path], system: str) -> None:
    binary = qemu_binary(system)
    shipped = _shipped(system)
    measured = introspect.run(binary, probe=False)
    assert (measured.system, measured.qemu_version) == (shipped.system, shipped.qemu_version)
    want = {n: _static(t) for n, t in shipped.to_json()["types"].items()}
    got = measured.to_json()["types"]
    assert want == got, _diff(want, got)


@pytest.mark.parametrize("system", SYSTEMS)
def test_every_probed_type_is_what_qemu_reports(qemu_binary: Callable[[str], Path], system: str) -> None:
    binary = qemu_binary(system)
    shipped = _shipped(system)
    measured = introspect.run(binary, probe=True)
    want, got = shipped.to_json()["types"], measured.to_json()["types"]
    assert want == got, _diff(want, got)
    assert measured.qemu_version == shipped.qemu_version


def test_probe_measures_known_devices(qemu_binary: Callable[[str], Path]) -> None:
    """A few facts checked against QEMU's sources, so the probe's method is tested, not only repeated."""
    import asyncio

    binary = qemu_binary("riscv64")
    uart = asyncio.run(probe.probe_one(binary, "riscv64", "serial-mm", []))
    # hw/char/serial-mm.c: one region of 8 << regshift bytes, one sysbus IRQ made by realize.
    assert (uart.creatable, uart.realized, uart.mmio, uart.note) == (True, True, [8], None)
    assert uart.lines_after == {"in": {}, "out": {"sysbus-irq": 1}}
    swi = asyncio.run(probe.probe_one(binary, "riscv64", "riscv.aclint.swi", []))
    # hw/intc/riscv_aclint.c: RISCV_ACLINT_SWI_SIZE 0x4000; realize looks the harts up.
    assert (swi.needs, swi.mmio) == (["cpus"], [0x4000])
    pci = asyncio.run(probe.probe_one(binary, "riscv64", "virtio-net-pci", []))
    assert not pci.creatable and pci.note is not None and "PCI" in pci.note


def test_cli_introspect_writes_and_caches(qemu_binary: Callable[[str], Path], tmp_path: Path) -> None:
    binary = qemu_binary("riscv64")
    out = tmp_path / "db.json"
    env = {**os.environ, "MACHINEDESC_CACHE": str(tmp_path / "cache")}
    argv = [sys.executable, "-c", "from machinedesc.cli import main; main()", "qemu", "introspect", "riscv64",
            "--qemu", str(binary), "--no-probe", "-o", str(out)]
    first = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("riscv64: QEMU 10.0.2: ") and "device types" in first.stdout
    assert "machinedesc: riscv64: properties of" in first.stderr  # progress goes to stderr
    db = typedb.TypeDatabase.loads(out.read_text())
    assert db.get("serial-mm") is not None
    start = time.monotonic()
    again = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert again.returncode == 0 and again.stdout == first.stdout
    assert "properties of" not in again.stderr, "the second run must come from the cache"
    assert time.monotonic() - start < 10
    both = subprocess.run([*argv[:5], "riscv64", "aarch64", "-o", str(out)], capture_output=True, text=True,
                          env=env, timeout=60, check=False)
    assert both.returncode == 2 and "exactly one SYSTEM" in both.stderr


def test_stock_qemu_gets_types_and_properties_and_a_reason_for_no_probe() -> None:
    from needs import missing

    stock = Path("/usr/bin/qemu-system-riscv64")
    if not stock.is_file():
        missing(f"stock QEMU not installed: no {stock} (apt-get install -t bookworm-backports qemu-system-riscv)")
    db = introspect.run(stock, probe=True)
    uart = db.get("serial-mm")
    assert uart is not None and uart.properties["regshift"].kind == "uint"
    assert uart.lines_after_realize is None and uart.mmio_sizes is None and not uart.creatable
    assert uart.probe_note is not None and uart.probe_note.startswith("not probed: ")
    assert "patch series" in uart.probe_note


def test_ctrl_c_leaves_no_qemu_behind(qemu_binary: Callable[[str], Path], tmp_path: Path) -> None:
    """Ctrl-C in the middle of the probe: exit 130, every probe QEMU gone, nothing cached."""
    import signal

    env = {**os.environ, "MACHINEDESC_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [sys.executable, "-c", "from machinedesc.cli import main; main()", "qemu", "introspect", "riscv64",
         "--qemu", str(qemu_binary("riscv64"))],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # a background job ignores SIGINT
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "instantiated" in line:
                break
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert children, "the probe runs QEMUs"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
    finally:
        proc.kill()
        proc.communicate()
    # Not even a zombie: machinedesc killed and reaped each one (not QEMU's death signal after we exited).
    assert [pid for pid in children if Path(f"/proc/{pid}").exists()] == []
    assert not list((tmp_path / "cache").glob("typedb/*.json"))


def test_lines_before_realize_are_those_of_an_unrealized_instance(qemu_binary: Callable[[str], Path]) -> None:
    """device-list-properties' instance (what lines_before_realize comes from) has the lines that
    ``device_add realized=false`` gives on the probe's -M none machine (docs/types.md)."""
    import asyncio

    binary = qemu_binary("riscv64")
    shipped = _shipped("riscv64")
    names = ["serial-mm", "sifive_soc.gpio", "riscv.aclint.swi", "rv64-riscv-cpu", "split-irq", "or-irq",
             "riscv.sifive.test", "sifive.spi"]

    async def unrealized_lines() -> dict[str, Any]:
        out: dict[str, Any] = {}
        async with probe._Vm(binary) as vm:
            for i, name in enumerate(names):
                await vm.call("device_add", {"driver": name, "id": f"d{i}", "realized": False})
                listing = await vm.call("qom-list", {"path": f"/machine/peripheral/d{i}"})
                out[name] = introspect.lines_of(listing)
        return out

    measured = asyncio.run(unrealized_lines())
    for name in names:
        info = shipped.get(name)
        assert info is not None and info.lines_before_realize == measured[name], name


def test_introspect_refuses_a_binary_of_another_system(qemu_binary: Callable[[str], Path], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # The check comes from QEMU itself (query-target), before any probe, whatever the binary is called.
    monkeypatch.setenv("MACHINEDESC_CACHE", str(tmp_path / "cache"))
    renamed = tmp_path / "qemu-system-riscv64"
    renamed.symlink_to(qemu_binary("aarch64"))
    out = tmp_path / "db.json"
    run = subprocess.run([sys.executable, "-m", "machinedesc", "qemu", "introspect", "riscv64", "--qemu", str(renamed),
                          "-o", str(out)], capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 2, run.stderr
    assert run.stderr.endswith(" is a QEMU for aarch64 guests (its QMP query-target), not riscv64: "
                               "give qemu-system-riscv64, or ask for system aarch64\n"), run.stderr
    assert "Traceback" not in run.stderr and not out.exists() and run.stdout == ""
    # A database cached for the binary (introspected as aarch64) is refused as riscv64 too.
    typedb.introspect(renamed, probe=False, system="aarch64")
    with pytest.raises(UsageError, match="is a QEMU for aarch64 guests"):
        typedb.introspect(renamed, probe=False, system="riscv64")
