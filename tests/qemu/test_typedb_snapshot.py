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

from machinedesc.qemu import introspect, probe, typedb

SYSTEMS = ("riscv64", "aarch64")
REGENERATE = "regenerate the snapshots: machinedesc qemu introspect --snapshot (and read the diff)"
#: The fields only the probe fills.
PROBED = ("creatable", "lines_after", "mmio", "needs", "note")


def _shipped(system: str, binary: Path) -> typedb.TypeDatabase:
    db = typedb.snapshot(system)
    assert db is not None
    if db.binary_sha256 != introspect.file_sha256(binary):
        pytest.fail(f"{binary} is not the binary the shipped {system} snapshot was made from: {REGENERATE}")
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
    shipped = _shipped(system, binary)
    measured = introspect.run(binary, probe=False)
    assert (measured.system, measured.qemu_version) == (shipped.system, shipped.qemu_version)
    want = {n: _static(t) for n, t in shipped.to_json()["types"].items()}
    got = measured.to_json()["types"]
    assert want == got, _diff(want, got)


@pytest.mark.parametrize("system", SYSTEMS)
def test_every_probed_type_is_what_qemu_reports(qemu_binary: Callable[[str], Path], system: str) -> None:
    binary = qemu_binary(system)
    shipped = _shipped(system, binary)
    measured = introspect.run(binary, probe=True)
    want, got = shipped.to_json()["types"], measured.to_json()["types"]
    assert want == got, _diff(want, got)
    assert measured.dumps() == shipped.dumps()


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
