"""The QEMU type database: every device type of a binary, its properties, GPIO lines and MMIO regions.

Generated from the binary itself (``introspect``, see ``qemu/introspect.py``
and ``docs/types.md``) and cached per binary content hash (``qemu/typecache.py``); a snapshot for
the pinned patched QEMU ships in the package (``snapshot``), so ``validate``
works on a machine without QEMU.  The hand table (``qemu/types.py``) keeps
what introspection cannot know and overrides this data.

The JSON form (``TypeDatabase.dumps``) has one line per type; a line is
parsed into a ``DeviceTypeInfo`` only when its type is first looked up, so
loading a snapshot costs ~1 ms (measured in ``bench/introspect.py``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import MachinedescError

#: Bump when the JSON form changes: cached databases of another format are regenerated.
FORMAT = 1

#: Property kinds (``PropertyInfo.kind``).
KINDS = ("bool", "int", "uint", "size", "str", "enum", "link", "chardev", "array", "other")

#: The ancestor that makes a type a sysbus device / a CPU.
SYSBUS_TYPE = "sys-bus-device"
CPU_TYPE = "cpu"

_INT_TYPE = re.compile(r"(u?)int(8|16|32|64)?")
_LINK_TYPE = re.compile(r"link<(.+)>")
#: qdev_prop_chr's description (hw/core/qdev-properties-system.c): a chardev-valued "str" property.
CHARDEV_DESCRIPTION = "ID of a chardev to use as a backend"


class TypeDatabaseError(MachinedescError):
    """A type database could not be made (QEMU failed) or read (a damaged file)."""

    exit_code = 5


def int_range(qemu_type: str) -> tuple[int, int] | None:
    """``(minimum, maximum)`` of an integer QOM type from its width: ``uint8`` -> ``(0, 255)``.

    ``int``/``uint`` without a width are 64-bit (QOM's ``int`` is an int64);
    ``size`` is a uint64.  None for a non-integer type.
    """
    if qemu_type == "size":
        return 0, 2**64 - 1
    m = _INT_TYPE.fullmatch(qemu_type)
    if m is None:
        return None
    bits = int(m[2] or 64)
    return (0, 2**bits - 1) if m[1] else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


def link_target(qemu_type: str) -> str | None:
    """``T`` of ``link<T>``, else None."""
    m = _LINK_TYPE.fullmatch(qemu_type)
    return m[1] if m else None


@dataclass(frozen=True)
class PropertyInfo:
    """One settable property of a device type, as QEMU reports it (``device-list-properties``).

    ``minimum``/``maximum`` bound the integer kinds (from the width);
    ``enum_values`` lists an enum's values (from QEMU's description of the
    enum type); ``default`` is the JSON value QEMU reports as the default.
    """

    name: str
    qemu_type: str
    kind: str
    minimum: int | None
    maximum: int | None
    enum_values: tuple[str, ...] | None
    link_type: str | None
    default: object | None
    description: str | None

    @classmethod
    def from_json(cls, name: str, raw: Mapping[str, Any]) -> PropertyInfo:
        qemu_type = str(raw["type"])
        bounds = int_range(qemu_type) if raw["kind"] in ("int", "uint", "size") else None
        enum = raw.get("enum")
        return cls(name=name, qemu_type=qemu_type, kind=str(raw["kind"]),
                   minimum=bounds[0] if bounds else None, maximum=bounds[1] if bounds else None,
                   enum_values=tuple(enum) if enum is not None else None, link_type=link_target(qemu_type),
                   default=raw.get("default"), description=raw.get("description"))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.qemu_type, "kind": self.kind}
        if self.enum_values is not None:
            out["enum"] = list(self.enum_values)
        if self.default is not None:
            out["default"] = self.default
        if self.description is not None:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class GpioLines:
    """A device's GPIO line families and how many lines each has.

    ``inputs``: ``unnamed-gpio-in`` and named input families (QOM children
    ``NAME[N]`` of type ``child<irq>``); ``outputs``: ``sysbus-irq``,
    ``unnamed-gpio-out`` and named output families (``link<irq>`` properties).
    """

    inputs: Mapping[str, int]
    outputs: Mapping[str, int]

    @classmethod
    def from_json(cls, raw: Mapping[str, Any] | None) -> GpioLines | None:
        if raw is None:
            return None
        return cls(dict(raw.get("in", {})), dict(raw.get("out", {})))

    def to_json(self) -> dict[str, Any]:
        return {"in": dict(sorted(self.inputs.items())), "out": dict(sorted(self.outputs.items()))}


@dataclass(frozen=True)
class DeviceTypeInfo:
    """What the binary says about one device type (see ``docs/types.md`` for each field's source).

    ``creatable``: ``device_add`` (realized=false) accepts it on the patched
    QEMU's ``-M none``.  ``lines_before_realize``/``lines_after_realize`` and
    ``mmio_sizes`` (bytes, in region order, after realize with default
    properties, or ``probe_properties``) are None when not probed;
    ``probe_note`` says why (or that probing killed QEMU).
    """

    name: str
    ancestry: tuple[str, ...]
    abstract: bool
    sysbus: bool
    cpu: bool
    creatable: bool
    properties: Mapping[str, PropertyInfo]
    lines_before_realize: GpioLines | None
    lines_after_realize: GpioLines | None
    mmio_sizes: tuple[int, ...] | None
    probe_note: str | None
    #: What realize needed in the probe beyond default properties: "memory links"
    #: (link<memory-region> properties set to system memory), "cpus" (CPUs created first).
    realize_needs: tuple[str, ...] = ()
    #: The properties the probe set (data/probe_properties.yaml), None for default properties:
    #: lines and MMIO sizes were measured with these.
    probe_properties: Mapping[str, object] | None = None
    #: CPUs the device creates as its QOM children when realized (a hart array), counted
    #: after the probe's realize; None when not probed.  They count toward -smp maxcpus.
    cpus_created: int | None = None

    @classmethod
    def from_json(cls, name: str, raw: Mapping[str, Any]) -> DeviceTypeInfo:
        ancestry = tuple(raw["ancestry"])
        mmio = raw.get("mmio")
        return cls(
            name=name, ancestry=ancestry, abstract=bool(raw.get("abstract", False)),
            sysbus=SYSBUS_TYPE in ancestry, cpu=CPU_TYPE in ancestry, creatable=bool(raw.get("creatable", False)),
            properties={k: PropertyInfo.from_json(k, v) for k, v in raw.get("properties", {}).items()},
            lines_before_realize=GpioLines.from_json(raw.get("lines_before")),
            lines_after_realize=GpioLines.from_json(raw.get("lines_after")),
            mmio_sizes=tuple(mmio) if mmio is not None else None, probe_note=raw.get("note"),
            realize_needs=tuple(raw.get("needs", ())), probe_properties=raw.get("probed_with"),
            cpus_created=int(raw.get("cpus_created", 0)) if "lines_after" in raw else None,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ancestry": list(self.ancestry)}
        if self.abstract:
            out["abstract"] = True
        if self.creatable:
            out["creatable"] = True
        out["properties"] = {k: self.properties[k].to_json() for k in sorted(self.properties)}
        for key, lines in (("lines_before", self.lines_before_realize), ("lines_after", self.lines_after_realize)):
            if lines is not None:
                out[key] = lines.to_json()
        if self.mmio_sizes is not None:
            out["mmio"] = list(self.mmio_sizes)
        if self.probe_note is not None:
            out["note"] = self.probe_note
        if self.realize_needs:
            out["needs"] = list(self.realize_needs)
        if self.probe_properties is not None:
            out["probed_with"] = dict(sorted(self.probe_properties.items()))
        if self.cpus_created:
            out["cpus_created"] = self.cpus_created
        return out


class _LazyTypes(Mapping[str, DeviceTypeInfo]):
    """name -> DeviceTypeInfo, built from the raw entry (a dict, or its JSON text) on first lookup."""

    def __init__(self, raw: Mapping[str, Mapping[str, Any] | str]) -> None:
        self._raw = raw
        self._built: dict[str, DeviceTypeInfo] = {}

    def __getitem__(self, name: str) -> DeviceTypeInfo:
        info = self._built.get(name)
        if info is None:
            entry = self._raw[name]
            try:
                data = json.loads(entry) if isinstance(entry, str) else entry
                info = self._built[name] = DeviceTypeInfo.from_json(name, data)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise TypeDatabaseError(f"type database: damaged entry for type '{name}' ({exc})") from exc
        return info

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __contains__(self, name: object) -> bool:
        return name in self._raw


class TypeDatabase:
    """Every device type (abstract ones too) of one QEMU binary.

    ``system`` is the target (``riscv64``), ``qemu_version`` what QMP's
    greeting says, ``binary_sha256`` the content hash of the binary it was
    made from (kept in the shipped snapshot too).
    """

    def __init__(self, system: str, qemu_version: str, binary_sha256: str | None,
                 types: Mapping[str, DeviceTypeInfo] | Mapping[str, Mapping[str, Any] | str], *,
                 raw: bool = False) -> None:
        self.system = system
        self.qemu_version = qemu_version
        self.binary_sha256 = binary_sha256
        if raw:
            self.types: Mapping[str, DeviceTypeInfo] = _LazyTypes(types)  # type: ignore[arg-type]
        else:
            self.types = dict(types)  # type: ignore[arg-type]

    def get(self, name: str) -> DeviceTypeInfo | None:
        """The type called ``name``, None when the binary has no such device type."""
        return self.types.get(name)

    def concrete(self) -> list[str]:
        """The names of the non-abstract types, sorted."""
        return sorted(n for n in self.types if not self.types[n].abstract)

    def coverage(self) -> dict[str, int]:
        """Counts of the concrete device types: all, sysbus, CPUs, creatable on ``-M none``,
        probed for lines after realize, with MMIO sizes, and sysbus ones without."""
        concrete = [self.types[n] for n in self.concrete()]
        return {
            "types": len(concrete), "sysbus": sum(t.sysbus for t in concrete), "cpus": sum(t.cpu for t in concrete),
            "creatable": sum(t.creatable for t in concrete),
            "lines_probed": sum(t.lines_after_realize is not None for t in concrete),
            "mmio_probed": sum(t.mmio_sizes is not None for t in concrete),
            "sysbus_without_mmio": sum(t.sysbus and t.mmio_sizes is None for t in concrete),
        }

    def summary(self) -> str:
        """One line: the binary and the coverage figures."""
        c = self.coverage()
        return (f"{self.system}: {self.qemu_version}: {c['types']} device types ({c['sysbus']} sysbus, "
                f"{c['cpus']} CPUs), {c['creatable']} creatable on -M none, {c['lines_probed']} probed for lines "
                f"after realize, {c['mmio_probed']} with MMIO sizes, {c['sysbus_without_mmio']} sysbus types "
                "without MMIO sizes")

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "system": self.system, "qemu_version": self.qemu_version,
                "binary_sha256": self.binary_sha256,
                "types": {n: self.types[n].to_json() for n in sorted(self.types)}}

    def dumps(self) -> str:
        """Deterministic JSON text: sorted keys, one line per type (so a diff shows the types that changed)."""
        data = self.to_json()
        types = data.pop("types")
        head = json.dumps(data, sort_keys=True, indent=1)[:-2]
        body = ",\n".join(f"  {json.dumps(n)}: {json.dumps(t, sort_keys=True, ensure_ascii=False)}"
                          for n, t in types.items())
        return f'{head},\n "types": {{\n{body}\n }}\n}}\n'

    @classmethod
    def loads(cls, text: str | bytes, where: str = "type database") -> TypeDatabase:
        """Read ``dumps`` output; TypeDatabaseError when it is damaged or of another format.

        Text in ``dumps``'s layout (one line per type) is read without parsing
        the types: each line is parsed when its type is first looked up, so a
        ~1 MB snapshot loads in ~2 ms instead of ~10 ms.  Other JSON is parsed whole.
        """
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        try:
            data = _split_layout(text)
            if data is None:
                data = json.loads(text)
            if data.get("format") != FORMAT:
                raise TypeDatabaseError(f"{where}: format {data.get('format')!r}, expected {FORMAT}")
            return cls(str(data["system"]), str(data["qemu_version"]), data.get("binary_sha256"),
                       data["types"], raw=True)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise TypeDatabaseError(f"{where}: not a machinedesc type database ({exc})") from exc


_TYPES_START = '\n "types": {\n'
_TYPES_END = "\n }\n}\n"
_NAME = json.JSONDecoder()


def _split_layout(text: str) -> dict[str, Any] | None:
    """``dumps`` text as its header dict with ``types`` mapping each name to its entry's JSON text; None
    when the text is not in that layout."""
    start = text.find(_TYPES_START)
    if start < 0 or not text.endswith(_TYPES_END):
        return None
    header = json.loads(text[:start].rstrip().rstrip(",") + "}")
    if not isinstance(header, dict):
        return None
    body = text[start + len(_TYPES_START):-len(_TYPES_END)]
    entries: dict[str, str] = {}
    for line in body.split("\n") if body else ():
        if not line.startswith('  "'):
            return None
        name, end = _NAME.raw_decode(line, 2)
        if not isinstance(name, str) or line[end:end + 2] != ": ":
            return None
        entries[name] = line[end + 2:].rstrip(",")
    header["types"] = entries
    return header


def snapshot_name(system: str) -> str:
    """The package-data file name of ``system``'s shipped snapshot."""
    return f"typedb-{system}.json"


def snapshot_path(system: str) -> Path:
    """Where ``machinedesc qemu introspect --snapshot`` writes ``system``'s snapshot (the source tree)."""
    return Path(__file__).resolve().parent / "data" / snapshot_name(system)


@functools.cache
def snapshot(system: str) -> TypeDatabase | None:
    """The snapshot shipped for ``system`` (package data), None when there is none.

    Made from the pinned patched QEMU with ``machinedesc qemu introspect
    --snapshot``; loaded once per process.
    """
    if not re.fullmatch(r"[a-z0-9_]+", system):
        return None
    entry = resources.files("machinedesc.qemu.data").joinpath(snapshot_name(system))
    try:
        text = entry.read_bytes()
    except OSError:
        return None
    return TypeDatabase.loads(text, f"shipped type database {snapshot_name(system)}")


def cached(binary: Path, probe: bool = True) -> TypeDatabase | None:
    """The cached database of ``binary`` when it was introspected before (and has not changed), else None.

    Starts no QEMU and hashes nothing (``qemu/typecache.py``).  For ``validate``/``plan``.
    """
    from .typecache import cached_database

    return cached_database(binary, probe)


def database(system: str, binary: Path | None = None) -> TypeDatabase | None:
    """The best database without starting QEMU: ``binary``'s cached one, else the shipped snapshot."""
    found = cached(binary) if binary is not None else None
    return found if found is not None else snapshot(system)


def introspect(binary: Path, *, probe: bool = True, jobs: int = 2, refresh: bool = False,
               progress: Callable[[str], None] | None = None, system: str | None = None) -> TypeDatabase:
    """The type database of ``binary``: from the cache when this content was introspected before.

    Otherwise starts QEMUs (``qemu/introspect.py``, ``qemu/probe.py``; ``probe``
    False skips instantiating types): ~1-2 s for the static half, ~20 s
    (riscv64) to ~50 s (aarch64) for the probe on two cores, and caches the
    result (``qemu/typecache.py``) keyed by the binary's SHA-256.  ``refresh``
    ignores the cache.  ``system``, when given, must be the binary's target
    (QMP query-target).  Raises TypeDatabaseError (QEMU failed), a QemuError,
    or UsageError (a binary of another system).
    """
    from .typecache import introspect_cached

    return introspect_cached(binary, probe=probe, jobs=jobs, refresh=refresh, progress=progress, system=system)
