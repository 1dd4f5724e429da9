"""Instantiate device types in throwaway patched QEMUs: creatable?, GPIO lines after realize, MMIO sizes.

Only an instance tells how many lines a device has once realized and how
big its MMIO regions are.  Each type gets its own ``-M none -preconfig -S``
QEMU (a start costs ~20-25 ms; one QEMU per type keeps each result
independent of what other types left behind: buses, CPUs), where, after
``x-machine-init`` (patch 1):

1. ``device_add realized=false``: creatable on ``-M none``?  (A bus device
   without its bus, a board-only type: the error is the note.)
2. ``qom-set realized``, then ``qom-list`` of the instance: inputs are
   ``child<irq>`` ``NAME[N]``, outputs ``link<irq>`` ``NAME[N]``.
3. ``x-sysbus-mmio-map`` with an impossible index, whose error says how many
   regions the device has (patch 4); each region mapped at its own 1 TiB
   slot, ``x-exit-preconfig`` and ``info mtree``: the size at each slot.

When realize fails, the type is probed again in fresh QEMUs with its
``link<memory-region>`` properties set to system memory, then after two CPUs
of the system's base type, then both; what it took is recorded
(``needs``), else the first error.  A QEMU that dies or hangs is recorded with
how it died.  ``jobs`` QEMUs run at a time; every QEMU is killed before
returning.
"""

from __future__ import annotations

import asyncio
import re
import fnmatch
import functools
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qemu.qmp import ExecuteError, QMPClient
from ruamel.yaml import YAML

from .introspect import TIMEOUT, Quiet, lines_of
from ..errors import QemuError
from .binary import HOW_TO_GET_PATCHED
from .process import QemuProcess
from .session import Session, connect, disconnect, silence_qmp_logging
from .typedb import CPU_TYPE

#: How long one probe command may take before QEMU counts as hung, in seconds.
PROBE_TIMEOUT = 20.0
#: The probe QEMU: room for CPUs that devices create themselves (hart arrays, SoCs).
ARGS = ("-M", "none", "-smp", "1,maxcpus=64", "-display", "none", "-nodefaults", "-preconfig", "-S")
#: The CPUs created for types whose realize looks CPUs up: (type, hart-id property or None).
BASE_CPUS = {"riscv64": ("rv64-riscv-cpu", "mhartid"), "aarch64": ("cortex-a53-arm-cpu", None)}
#: System memory as a QOM path, what board code passes to memory-region links.
SYSTEM_MEMORY = "/machine/unattached/system[0]"
#: Region slots are this far apart (1 TiB), so that every region of a batch has its own address.
SLOT = 1 << 40

_NUM_MMIO = re.compile(r"has (\d+) MMIO region")
#: A region mapped directly into system memory in ``info mtree``; QEMU marks an end past 2**64 - 1.
_MTREE = re.compile(r"^(\[DETECTED OVERFLOW!\] )? {4,}([0-9a-f]+)-([0-9a-f]+) \(prio")


@dataclass
class Probed:
    """What the probe found out about one type (merged into its JSON entry by ``probe_types``)."""

    creatable: bool = False
    realized: bool = False
    lines_after: dict[str, Any] | None = None
    num_mmio: int | None = None
    mmio: list[int] | None = None
    needs: list[str] = field(default_factory=list)
    #: The types of the instance's QOM children after realize.
    children: list[str] = field(default_factory=list)
    note: str | None = None


class _Died(Exception):
    """The probe QEMU died or hung; ``why`` says how."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class _Vm:
    """One probe QEMU (``ARGS``) after x-machine-init.  ``call`` raises _Died when it dies or hangs."""

    def __init__(self, binary: Path) -> None:
        self.binary = binary
        self.qemu: QemuProcess | None = None
        self.client = QMPClient("machinedesc-probe")
        self.session: Session[Quiet] | None = None

    async def __aenter__(self) -> _Vm:
        self.qemu = QemuProcess(self.binary, list(ARGS), console=None)
        try:
            await connect(self.client, self.qemu.qmp_socket, TIMEOUT, self.qemu)
        except QemuError as exc:
            tail = self.qemu.stderr_tail(1)
            self.qemu.cleanup()
            raise _Died(str(exc).splitlines()[0].removeprefix("machinedesc: ") + (f": {tail}" if tail else "")) from exc
        except BaseException:  # Ctrl-C cancelled the start: __aexit__ will not run
            self.qemu.cleanup()
            raise
        self.session = Session(self.client, PROBE_TIMEOUT, self.qemu, Quiet(), str(self.binary))
        try:
            await self.call("x-machine-init")
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await disconnect(self.client)
        finally:  # also when Ctrl-C cancels the disconnect: never leave a QEMU behind
            if self.qemu is not None:
                self.qemu.cleanup()

    async def call(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        """One command; ExecuteError passes through, a dead or silent QEMU raises _Died."""
        assert self.session is not None and self.qemu is not None
        try:
            return await self.session.call(command, arguments)
        except QemuError as exc:
            self.qemu.wait(0.5)
            tail = self.qemu.stderr_tail(1)
            raise _Died(f"QEMU {self.qemu.describe_exit()}" + (f" ({tail})" if tail else "")) from exc

    async def add_cpus(self, system: str, count: int, prefix: str) -> None:
        """Create ``count`` CPUs of the system's base type (hart IDs 0..count-1)."""
        cpu = BASE_CPUS.get(system)
        if cpu is None:
            return
        for n in range(count):
            args: dict[str, Any] = {"driver": cpu[0], "id": f"{prefix}{n}"}
            if cpu[1]:
                args[cpu[1]] = n
            await self.call("device_add", args)


def _error(exc: ExecuteError) -> str:
    return " ".join(str(exc.error.error.desc).split())


@functools.cache
def _probe_table() -> tuple[tuple[str, dict[str, Any]], ...]:
    text = resources.files("machinedesc.qemu.data").joinpath("probe_properties.yaml").read_text(encoding="utf-8")
    return tuple((str(k), dict(v)) for k, v in (YAML(typ="safe").load(text) or {}).items())


def probe_properties(name: str) -> dict[str, Any]:
    """The properties data/probe_properties.yaml gives ``name`` for probing (exact name, then pattern)."""
    table = _probe_table()
    found = next((v for k, v in table if k == name), None)
    if found is None:
        found = next((v for k, v in table if fnmatch.fnmatchcase(name, k)), None)
    return dict(found or {})


def attempts(system: str, link_props: Sequence[str]) -> list[tuple[str, ...]]:
    """What to give a type in successive probes until it realizes: nothing, memory links, CPUs, both."""
    out: list[tuple[str, ...]] = [()]
    if link_props:
        out.append(("memory links",))
    if system in BASE_CPUS:
        out.append(("cpus",))
        if link_props:
            out.append(("memory links", "cpus"))
    return out


async def _probe_once(vm: _Vm, system: str, name: str, link_props: Sequence[str], props: Mapping[str, Any],
                      result: Probed) -> bool:
    """One probe of ``name`` with ``props`` in the fresh ``vm`` with ``result.needs``; False when realize failed."""
    path = "/machine/peripheral/dut"
    if "cpus" in result.needs:
        await vm.add_cpus(system, 2, "cpu")
    try:
        await vm.call("device_add", {**props, "driver": name, "id": "dut", "realized": False})
    except ExecuteError as exc:
        result.note = f"not creatable on -M none: {_error(exc)}"
        return True
    result.creatable = True
    if "memory links" in result.needs:
        for prop in link_props:
            await vm.call("qom-set", {"path": path, "property": prop, "value": SYSTEM_MEMORY})
    try:
        await vm.call("qom-set", {"path": path, "property": "realized", "value": True})
    except ExecuteError as exc:
        result.note = f"realize failed: {_error(exc)}"
        return False
    result.realized = True
    listing = await vm.call("qom-list", {"path": path})
    result.lines_after = lines_of(listing).to_json()
    result.children = sorted(str(p["type"])[6:-1] for p in listing if str(p["type"]).startswith("child<"))
    try:
        await vm.call("x-sysbus-mmio-map", {"device": "dut", "mmio": 0xFFFFFFFF, "addr": 0})
    except ExecuteError as exc:
        m = _NUM_MMIO.search(str(exc.error.error.desc))
        result.num_mmio = int(m[1]) if m else 0  # "not a sysbus device": no sysbus regions
    if not result.num_mmio:
        result.mmio = []
        return True
    for region in range(result.num_mmio):
        await vm.call("x-sysbus-mmio-map", {"device": "dut", "mmio": region, "addr": (region + 1) * SLOT})
    try:
        await vm.call("x-exit-preconfig")
        tree = str(await vm.call("human-monitor-command", {"command-line": "info mtree"}))
    except ExecuteError as exc:
        result.note = f"MMIO sizes unknown: leaving preconfig failed: {_error(exc)}"
        return True
    sizes = _mtree_sizes(tree)
    found = [sizes.get((region + 1) * SLOT) for region in range(result.num_mmio)]
    if None in found:
        missing = ", ".join(str(r) for r, size in enumerate(found) if size is None)
        result.note = f"MMIO sizes unknown: region {missing} not in the memory map once mapped"
    else:
        result.mmio = [size for size in found if size is not None]
    return True


async def probe_one(binary: Path, system: str, name: str, link_props: Sequence[str],
                    props: Mapping[str, Any] | None = None) -> Probed:
    """Probe ``name`` (with ``props``, from data/probe_properties.yaml) in fresh QEMUs, giving it more
    (``attempts``) while its realize fails.

    A QEMU killed by the probe is recorded in the note, also when a later
    attempt (with CPUs, say) realizes the type: QEMU must never die of a type.
    """
    first: Probed | None = None
    crash: Probed | None = None
    for needs in attempts(system, link_props):
        result = Probed(needs=list(needs))
        try:
            async with _Vm(binary) as vm:
                if await _probe_once(vm, system, name, link_props, props or {}, result):
                    if crash is not None:
                        result.note = f"{crash.note}; realized once given {' and '.join(needs)}"
                    return result
        except _Died as died:
            given = f" (given {' and '.join(needs)})" if needs else ""
            result.note = f"probing it{given} killed QEMU: {died.why}"
            result.realized = False
            crash = crash or result
        except ExecuteError as exc:  # creating the CPUs or setting a link failed
            result.note = f"realize failed: {_error(exc)}"
        first = first or result
    if crash is not None:
        crash.needs = []
        return crash
    assert first is not None
    tried = [" and ".join(needs) for needs in attempts(system, link_props)[1:]]
    given = "the properties of probe_properties.yaml" if props else "default properties"
    first.note = f"{first.note} (with {given}" + "".join(f"; also with {t}" for t in tried) + ")"
    first.needs = []
    return first


def _mtree_sizes(tree: str) -> dict[int, int]:
    """Start address -> size of the outermost region at each address in system memory, from ``info mtree``.

    A mapped region is usually listed right under the root, but not always
    (xlnx.ps7-dev-cfg's is indented further): any depth is taken, the first
    (outermost) region at an address wins, and the probe's slots are far apart.
    """
    sizes: dict[int, int] = {}
    in_memory = False
    header = False
    for line in tree.replace("\r", "").splitlines():
        if line.startswith("address-space:"):
            # Address spaces with the same root are listed under one group of headers.
            in_memory = (in_memory and header) or line.strip() == "address-space: memory"
            header = True
            continue
        header = False
        m = _MTREE.match(line) if in_memory else None
        if m:
            start, end = int(m[2], 16), int(m[3], 16) + (2**64 if m[1] else 0)
            sizes.setdefault(start, max(0, end - start + 1))
    return sizes


#: The commands of the patch series the probe uses.
NEEDED = ("x-machine-init", "x-sysbus-mmio-map", "x-exit-preconfig")


async def unprobeable(binary: Path) -> str | None:
    """Why ``binary`` cannot be probed (stock QEMU: no patch series), None when it can."""
    try:
        async with _Vm(binary) as vm:
            commands = {c["name"] for c in await vm.call("query-commands")}
    except _Died as died:
        return f"{binary} does not start as the probe needs ({died.why})"
    except ExecuteError as exc:
        return f"{binary}: {_error(exc)}"
    missing = [c for c in NEEDED if c not in commands]
    return f"{binary} lacks {', '.join(missing)}" if missing else None


async def _run(binary: Path, system: str, types: dict[str, dict[str, Any]], jobs: int,
               progress: Callable[[str], None]) -> dict[str, Probed]:
    silence_qmp_logging()
    names = sorted(n for n, t in types.items() if not t.get("abstract"))
    why = await unprobeable(binary)
    if why is not None:
        progress(f"not probing: {why}; {HOW_TO_GET_PATCHED}")
        return {n: Probed(note=f"not probed: {why} (the probe needs machinedesc's patch series)") for n in names}
    results: dict[str, Probed] = {}
    todo = list(names)

    async def worker() -> None:
        while todo:
            name = todo.pop(0)
            links = sorted(p for p, spec in types[name]["properties"].items() if spec["type"] == "link<memory-region>")
            results[name] = await probe_one(binary, system, name, links, probe_properties(name))
            if len(results) % 100 == 0 or len(results) == len(names):
                progress(f"instantiated {len(results)}/{len(names)} device types")

    await asyncio.gather(*(worker() for _ in range(jobs)))
    return results


def probe_types(binary: Path, system: str, types: dict[str, dict[str, Any]], *, jobs: int = 2,
                progress: Callable[[str], None] | None = None) -> None:
    """Add ``creatable``, ``lines_after``, ``mmio``, ``needs`` and ``note`` to the JSON entries in ``types``."""
    results = asyncio.run(_run(binary, system, types, max(1, jobs), progress or (lambda _t: None)))
    for name, probed in results.items():
        entry = types[name]
        if probe_properties(name):
            entry["probed_with"] = dict(sorted(probe_properties(name).items()))
        if probed.creatable:
            entry["creatable"] = True
        if probed.realized:
            entry["lines_after"] = probed.lines_after
            cpus = sum(CPU_TYPE in types.get(child, {}).get("ancestry", ()) for child in probed.children)
            if cpus:
                entry["cpus_created"] = cpus
            if probed.num_mmio == 0:
                entry["mmio"] = []
            elif probed.mmio is not None:
                entry["mmio"] = probed.mmio
        if probed.needs:
            entry["needs"] = probed.needs
        if probed.note:
            entry["note"] = probed.note
