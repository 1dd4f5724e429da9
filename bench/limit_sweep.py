"""Sweep: which (device type, integer property, extreme value) kills the patched QEMU?

For every creatable device type of the type-database snapshots
(machinedesc/qemu/data/typedb-{riscv64,aarch64}.json) and each of its integer
properties (kind ``uint`` / ``int``), one fresh ``-M none -preconfig -S`` QEMU
(qemu/probe.py's ``_Vm``) creates the type the way the probe realized it (its
``probed_with`` properties from data/probe_properties.yaml, its
``link<memory-region>`` properties set to system memory and two CPUs when it
``needs`` them) with that ONE property set to an extreme value:

* uint8/16/32/64: the maximum of the type, 0x10000000 (a large count) when
  it fits, and 0;
* int*: the minimum and the maximum of the type.

``device_add realized=false``, the links, ``qom-set realized``,
``x-exit-preconfig``, ``query-status``: errors are fine, a QEMU killed by a
signal, exiting by itself or hanging is a crash.  Properties whose names say
"count" (num-*, *size, *len*, *count*, *lines*, *irqs*, *harts*, *cpus*,
*sources*, *pages*, *width*) go first; ``--budget`` seconds bound the sweep.

Output: one line per crash, ``system type property value: how`` (marked
``[refused by limits]`` when qemu_types.yaml's limits make ``validate`` refuse
the value), and a count of the attempts.  Usage::

    python bench/limit_sweep.py [--budget 240] [--jobs 2] [--all] [--system riscv64]

(shapes: attempts are (system, type, property, value) tuples; times in s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

from qemu.qmp import ExecuteError

from machinedesc.qemu.build import patched_binary
from machinedesc.qemu.probe import SYSTEM_MEMORY, _Died, _Vm
from machinedesc.qemu.session import silence_qmp_logging
from machinedesc.qemu.types import system_type_info

SYSTEMS = ("riscv64", "aarch64")
PRIORITY = re.compile(r"^num-|size|len|count|lines|irqs|harts|cpus|sources|pages|width")
BITS = {"uint8": 8, "uint16": 16, "uint32": 32, "uint64": 64, "size": 64,
        "int8": 8, "int16": 16, "int32": 32, "int64": 64, "int": 64}
BIG_COUNT = 0x10000000

Attempt = tuple[str, str, str, int]


def extremes(kind: str, qtype: str) -> list[int]:
    """The values tried for a property of ``kind`` (uint/int) and QEMU type ``qtype``."""
    bits = BITS.get(qtype, 64 if kind == "uint" else 32)
    if kind == "uint":
        top = (1 << bits) - 1
        return [top] + ([BIG_COUNT] if top > BIG_COUNT else []) + [0]
    return [-(1 << (bits - 1)), (1 << (bits - 1)) - 1]


def load(system: str) -> dict[str, Any]:
    text = resources.files("machinedesc.qemu.data").joinpath(f"typedb-{system}.json").read_text(encoding="utf-8")
    types: dict[str, Any] = json.loads(text)["types"]
    return types


def attempts(systems: tuple[str, ...], everything: bool) -> list[Attempt]:
    """Every attempt, the count-like property names first."""
    first: list[Attempt] = []
    rest: list[Attempt] = []
    for system in systems:
        for name, info in sorted(load(system).items()):
            if not info.get("creatable") or not info.get("realized", True):
                continue
            for prop, p in sorted(info.get("properties", {}).items()):
                if p.get("kind") not in ("uint", "int"):
                    continue
                out = first if PRIORITY.search(prop) else rest
                out.extend((system, name, prop, v) for v in extremes(p["kind"], str(p.get("type"))))
    return first + (rest if everything else [])


async def try_one(binary: Path, system: str, info: dict[str, Any], name: str, prop: str, value: int) -> str | None:
    """How QEMU died creating ``name`` with ``prop`` = ``value``, or None."""
    needs = info.get("needs") or []
    links = [p for p, i in info.get("properties", {}).items() if i.get("type") == "link<memory-region>"]
    props = {**(info.get("probed_with") or {}), prop: value}
    try:
        async with _Vm(binary) as vm:
            if "cpus" in needs:
                await vm.add_cpus(system, 2, "cpu")
            try:
                await vm.call("device_add", {**props, "driver": name, "id": "dut", "realized": False})
                if "memory links" in needs:
                    for link in links:
                        await vm.call("qom-set", {"path": "/machine/peripheral/dut", "property": link,
                                                  "value": SYSTEM_MEMORY})
                await vm.call("qom-set", {"path": "/machine/peripheral/dut", "property": "realized", "value": True})
            except ExecuteError:
                pass
            try:
                await vm.call("x-exit-preconfig")
            except ExecuteError:
                pass
            await vm.call("query-status")
    except _Died as died:
        return died.why
    return None


async def run(budget: float, jobs: int, systems: tuple[str, ...], everything: bool) -> int:
    silence_qmp_logging()
    dbs = {s: load(s) for s in systems}
    binaries = {s: patched_binary(s) or Path(f"qemu-system-{s}") for s in systems}
    todo = attempts(systems, everything)
    deadline = time.monotonic() + budget
    crashes: list[str] = []
    done = 0

    async def worker() -> None:
        nonlocal done
        while todo and time.monotonic() < deadline:
            system, name, prop, value = todo.pop(0)
            binary = binaries[system]
            why = await try_one(binary, system, dbs[system][name], name, prop, value)
            done += 1
            if why is not None:
                limit = system_type_info(name, system).limits.get(prop)
                refused = limit is not None and not limit[0] <= value <= limit[1]
                line = f"{system} {name} {prop} {value:#x}: {why}" + (" [refused by limits]" if refused else "")
                crashes.append(line)
                print(line, flush=True)

    await asyncio.gather(*(worker() for _ in range(jobs)))
    print(f"{done} attempts, {len(todo)} left, {len(crashes)} crashes", flush=True)
    return 1 if crashes else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=240.0, help="seconds (default 240)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--system", choices=SYSTEMS, action="append")
    parser.add_argument("--all", action="store_true", help="also the properties whose names are not count-like")
    args = parser.parse_args()
    return asyncio.run(run(args.budget, args.jobs, tuple(args.system or SYSTEMS), args.all))


if __name__ == "__main__":
    sys.exit(main())
