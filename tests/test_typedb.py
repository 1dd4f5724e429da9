"""The type database's model: JSON round trip, integer ranges, property kinds, the shipped snapshots."""

from __future__ import annotations

import pytest

from machinedesc.qemu import introspect, typedb
from machinedesc.qemu.typedb import TypeDatabase, TypeDatabaseError


@pytest.mark.parametrize(("qemu_type", "bounds"), [
    ("uint8", (0, 255)), ("uint64", (0, 2**64 - 1)), ("int32", (-(2**31), 2**31 - 1)),
    ("int", (-(2**63), 2**63 - 1)), ("size", (0, 2**64 - 1)), ("bool", None), ("str", None),
])
def test_int_range_follows_the_width(qemu_type: str, bounds: tuple[int, int] | None) -> None:
    assert typedb.int_range(qemu_type) == bounds


@pytest.mark.parametrize(("qemu_type", "description", "kind"), [
    ("bool", None, "bool"), ("uint32", None, "uint"), ("int8", None, "int"), ("size", None, "size"),
    ("str", None, "str"), ("str", typedb.CHARDEV_DESCRIPTION, "chardev"), ("link<memory-region>", None, "link"),
    ("OnOffAuto", "on/off/auto", "enum"), ("list", None, "array"), ("busnr", None, "other"),
    ("IOThreadVirtQueueMappingList", None, "other"), ("QemuUUID", None, "other"),
])
def test_classify(qemu_type: str, description: str | None, kind: str) -> None:
    assert introspect.classify(qemu_type, description) == kind


def test_enum_values_come_from_the_common_description() -> None:
    props = [{"name": "a", "type": "OnOffAuto", "description": "Enable this (DEBUG)"},
             {"name": "b", "type": "EndianMode", "description": "Endian mode, big/little/unspecified"}]
    values = introspect.enum_values(props)
    assert values["OnOffAuto"] == ("on", "off", "auto")  # no description lists them: the QAPI fallback
    assert values["EndianMode"] == ("big", "little", "unspecified")


@pytest.mark.parametrize("system", ["riscv64", "aarch64"])
def test_snapshot_round_trips_byte_for_byte(system: str) -> None:
    db = typedb.snapshot(system)
    assert db is not None and db.system == system and db.binary_sha256
    text = db.dumps()
    again = TypeDatabase.loads(text)
    assert again.dumps() == text
    # The shipped file is exactly what dumps() writes (deterministic, regenerated, not hand-edited).
    from importlib import resources
    shipped = resources.files("machinedesc.qemu.data").joinpath(typedb.snapshot_name(system)).read_text()
    assert shipped == text


def test_snapshot_lookup() -> None:
    db = typedb.snapshot("riscv64")
    assert db is not None
    uart = db.get("serial-mm")
    assert uart is not None and uart.sysbus and not uart.cpu and not uart.abstract
    assert uart.properties["regshift"].maximum == 255
    assert uart.properties["chardev"].kind == "chardev"
    assert db.get("serial-mmm") is None
    cpu = db.get("rv64-riscv-cpu")
    assert cpu is not None and cpu.cpu
    sysbus = db.get("sys-bus-device")
    assert sysbus is not None and sysbus.abstract


def test_no_snapshot_for_unknown_systems() -> None:
    assert typedb.snapshot("vax") is None
    assert typedb.snapshot("../etc") is None


def test_damaged_database_is_an_error() -> None:
    with pytest.raises(TypeDatabaseError, match="not a machinedesc type database"):
        TypeDatabase.loads("{")
    with pytest.raises(TypeDatabaseError, match="format"):
        TypeDatabase.loads('{"format": 999}')
