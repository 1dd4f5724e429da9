"""Ask a QEMU binary for its device types and their properties (the static half of the type database).

One ordinary QEMU (``-M none -S``, no ``-preconfig``: QEMU refuses
``device-list-properties`` during preconfig) answers ``qom-list-types``
(every type with its parent, abstract ones included) and, per device type,
``device-list-properties`` (concrete types: it creates an instance, so the
GPIO lines made by ``instance_init`` show up as ``child<irq>`` and
``link<irq>`` properties) or ``qom-list-properties`` (abstract types: class
properties only).  ``qemu/probe.py`` adds what only a realized instance tells.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from qemu.qmp import ExecuteError, QMPClient

from ..errors import UsageError
from .process import QemuProcess
from .session import Session, connect, disconnect, qemu_version, silence_qmp_logging
from .typedb import CHARDEV_DESCRIPTION, GpioLines, TypeDatabase, TypeDatabaseError, int_range, link_target

#: Properties every device has, that a board never sets (QEMU's own device-list-properties skips them).
_DEVICE_INTERNAL = frozenset({"type", "parent_bus", "realized", "hotplugged", "hotpluggable"})

#: A GPIO line as a QOM property: ``FAMILY[N]``.
_LINE = re.compile(r"(.+)\[(\d+)\]")
#: An enum's values as QEMU's PropertyInfo descriptions list them: ``on/off/auto``.
_ENUM_LIST = re.compile(r"[\w.-]+(?:/[\w.-]+)+")

#: Enum types whose values no property description lists (from the QAPI schema, qapi/*.json).
_ENUM_FALLBACK: Mapping[str, tuple[str, ...]] = {
    "OnOffAuto": ("on", "off", "auto"),                                   # qapi/common.json
    "OnOffSplit": ("on", "off", "split"),                                 # qapi/common.json
    "OffAutoPCIBAR": ("off", "auto", "bar0", "bar1", "bar2", "bar3", "bar4", "bar5"),  # qapi/common.json
}


def classify(qemu_type: str, description: str | None) -> str:
    """The property kind (typedb.KINDS) of a QOM property type as QEMU reports it."""
    if qemu_type == "bool":
        return "bool"
    if qemu_type == "size":
        return "size"
    if int_range(qemu_type) is not None:
        return "uint" if qemu_type.startswith("u") else "int"
    if qemu_type in ("str", "string"):
        return "chardev" if description == CHARDEV_DESCRIPTION else "str"
    if link_target(qemu_type) is not None:
        return "link"
    if qemu_type == "list":
        return "array"
    if qemu_type[:1].isupper() and not qemu_type.endswith("List") and qemu_type != "QemuUUID":
        return "enum"
    return "other"


def enum_values(props: Iterable[Mapping[str, Any]]) -> dict[str, tuple[str, ...]]:
    """Each enum type's values, from the descriptions of all properties of that type.

    QEMU's PropertyInfo for an enum describes it as ``a/b/c`` (possibly in
    a sentence); a property may override the description, so the values come
    from the description most properties of the type share that lists them.
    """
    seen: dict[str, Counter[tuple[str, ...]]] = {}
    for prop in props:
        qemu_type = str(prop["type"])
        if classify(qemu_type, None) != "enum":
            continue
        found = _ENUM_LIST.findall(str(prop.get("description") or ""))
        counter = seen.setdefault(qemu_type, Counter())
        if found:
            counter[tuple(found[-1].split("/"))] += 1
    values = dict(_ENUM_FALLBACK)
    for qemu_type, counter in seen.items():
        if counter:
            values[qemu_type] = max(counter.items(), key=lambda kv: (kv[1], kv[0]))[0]
    return values


def ancestry(name: str, parents: Mapping[str, str | None]) -> tuple[str, ...]:
    """QOM parents of ``name``, nearest first (``device`` ... up to the root)."""
    chain: list[str] = []
    cur = parents.get(name)
    while cur is not None and cur not in chain:
        chain.append(cur)
        cur = parents.get(cur)
    return tuple(chain)


def lines_of(props: Iterable[Mapping[str, Any]]) -> GpioLines:
    """The GPIO line families in a property list: ``child<irq>`` inputs, ``link<irq>`` outputs."""
    inputs: Counter[str] = Counter()
    outputs: Counter[str] = Counter()
    for prop in props:
        m = _LINE.fullmatch(str(prop["name"]))
        if m is None:
            continue
        if prop["type"] == "child<irq>":
            inputs[m[1]] += 1
        elif prop["type"] == "link<irq>":
            outputs[m[1]] += 1
    return GpioLines(dict(sorted(inputs.items())), dict(sorted(outputs.items())))


def settable(props: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The properties a board may set: not children, not GPIO lines, not the generic device ones."""
    out = []
    for prop in props:
        qemu_type = str(prop["type"])
        if prop["name"] in _DEVICE_INTERNAL or qemu_type.startswith("child<") or qemu_type == "link<irq>":
            continue
        if str(prop["name"]).startswith("legacy-"):
            continue
        out.append(prop)
    return out


def property_json(prop: Mapping[str, Any], enums: Mapping[str, tuple[str, ...]]) -> dict[str, Any]:
    """One property in the database's JSON form (see typedb.PropertyInfo)."""
    qemu_type = str(prop["type"])
    description = prop.get("description")
    kind = classify(qemu_type, description)
    out: dict[str, Any] = {"type": qemu_type, "kind": kind}
    if kind == "enum" and qemu_type in enums:
        out["enum"] = list(enums[qemu_type])
    if "default-value" in prop and prop["default-value"] is not None:
        out["default"] = prop["default-value"]
    if description:
        out["description"] = description
    return out


async def static_types(session: Session[Any], progress: Any = None) -> dict[str, dict[str, Any]]:
    """Every device type's JSON entry without the probed fields (ancestry, abstract, properties, lines).

    ``session`` talks to an ordinary ``-M none -S`` QEMU.  ``progress(done,
    total)`` is called now and then.  QMP errors pass through.
    """
    everything = await session.call("qom-list-types", {"abstract": True})
    parents: dict[str, str | None] = {t["name"]: t.get("parent") for t in everything}
    devices = await session.call("qom-list-types", {"abstract": True, "implements": "device"})
    raw_props: dict[str, list[Mapping[str, Any]]] = {}
    abstract = {t["name"] for t in devices if t.get("abstract")}
    names = sorted(t["name"] for t in devices)
    for i, name in enumerate(names):
        command = "qom-list-properties" if name in abstract else "device-list-properties"
        raw_props[name] = list(await session.call(command, {"typename": name}))
        if progress is not None and (i % 200 == 199 or i == len(names) - 1):
            progress(i + 1, len(names))
    enums = enum_values(p for props in raw_props.values() for p in settable(props))
    types: dict[str, dict[str, Any]] = {}
    for name in names:
        props = raw_props[name]
        entry: dict[str, Any] = {"ancestry": list(ancestry(name, parents))}
        if name in abstract:
            entry["abstract"] = True
        entry["properties"] = {str(p["name"]): property_json(p, enums)
                               for p in sorted(settable(props), key=lambda p: str(p["name"]))}
        if name not in abstract:
            entry["lines_before"] = lines_of(props).to_json()
        types[name] = entry
    return types


class Quiet:
    """A session echo that shows nothing (introspection reports progress its own way)."""

    def sent(self, message: Mapping[str, Any]) -> None:
        pass

    def received(self, reply: Mapping[str, Any]) -> None:
        pass


#: How long one QMP command of the introspection may take, in seconds.
TIMEOUT = 60.0
#: The ordinary QEMU that answers device-list-properties.
STATIC_ARGS = ("-M", "none", "-S", "-display", "none", "-nodefaults")


async def _static(binary: Path, progress: Callable[[str], None],
                  system: str | None = None) -> tuple[str, str, dict[str, dict[str, Any]]]:
    silence_qmp_logging()
    qemu = QemuProcess(binary, list(STATIC_ARGS), console=None)
    client = QMPClient("machinedesc-introspect")
    try:
        await connect(client, qemu.qmp_socket, TIMEOUT, qemu)
        session = Session(client, TIMEOUT, qemu, Quiet(), str(binary))
        target = await session.call("query-target")
        check_system(binary, str(target["arch"]), system)
        version = qemu_version(client)

        def step(done: int, total: int) -> None:
            progress(f"properties of {done}/{total} device types")

        types = await static_types(session, step)
        return str(target["arch"]), version, types
    except ExecuteError as exc:
        raise TypeDatabaseError(f"machinedesc: {binary}: {exc}") from exc
    finally:
        try:
            await disconnect(client)
        finally:  # also when Ctrl-C cancels the disconnect
            qemu.cleanup()


def check_system(binary: Path, arch: str, system: str | None) -> None:
    """Raise UsageError when ``binary`` (whose QMP query-target says ``arch``) is not a QEMU for ``system``."""
    if system is not None and arch != system:
        raise UsageError(f"{binary} is a QEMU for {arch} guests (its QMP query-target), not {system}: "
                         f"give qemu-system-{system}, or ask for system {arch}")


def run(binary: Path, *, probe: bool = True, jobs: int = 2,
        progress: Callable[[str], None] | None = None, system: str | None = None) -> TypeDatabase:
    """Introspect ``binary`` now (no cache): the static half, then (``probe``) instances.

    ``jobs`` QEMUs probe in parallel; ``system``, when given, must be the
    binary's target (checked before any probe).  Raises TypeDatabaseError,
    QemuError or UsageError (another system).
    """
    say = progress or (lambda _text: None)
    digest = file_sha256(binary)
    system, version, types = asyncio.run(_static(binary, say, system))
    if probe:
        from .probe import probe_types

        probe_types(binary, system, types, jobs=jobs, progress=say)
    return TypeDatabase(system, version, digest, types, raw=True)


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's content, in hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
