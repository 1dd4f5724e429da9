"""The type database's model: JSON round trip, integer ranges, property kinds, the shipped snapshots."""

from __future__ import annotations

from pathlib import Path

import pytest

from machinedesc.qemu import introspect, typedb, types
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


def test_type_info_without_a_database_is_the_table() -> None:
    info = types.type_info("serial-mm")
    assert info.known and info.mmio == ("8 << regshift",) and info.device is None and info.properties is None
    unknown = types.type_info("sifive_soc.gpio")
    assert not unknown.known and unknown.output("anything") == types.LineInfo()


def test_type_info_merges_the_table_over_the_database() -> None:
    db = typedb.snapshot("riscv64")
    assert db is not None
    uart = types.type_info("serial-mm", db)
    # The table's expression wins over the size measured with default properties.
    assert uart.mmio == ("8 << regshift",) and not uart.mmio_from_defaults
    assert uart.chardevs == ("chardev",) and uart.properties is not None and "regshift" in uart.properties
    # A type the table lacks: everything from the database.
    gpio = types.type_info("sifive_soc.gpio", db)
    assert gpio.known and gpio.sysbus and gpio.lines_known and gpio.mmio_from_defaults
    assert gpio.mmio == (0x100,)  # SIFIVE_GPIO_SIZE, hw/gpio/sifive_gpio.c
    out = gpio.output("sysbus-irq")
    assert out == types.LineInfo(32, after_realize=True)
    assert gpio.input("unnamed-gpio-in") == types.LineInfo(32, after_realize=True)  # made by realize (ngpio)
    cpu = types.type_info("rv64-riscv-cpu", db)
    assert cpu.input("unnamed-gpio-in") == types.LineInfo(127, after_realize=False)  # the table's entry
    assert gpio.output("no-such-line") is None
    # The probe found that realize needs the CPUs.
    assert types.type_info("riscv.aclint.swi", db).realize_after_cpus
    # A CPU type from the database is a CPU.
    assert types.type_info("sifive-u54-riscv-cpu", db).is_cpu


def test_unprobed_types_do_not_claim_their_lines_are_complete() -> None:
    db = typedb.snapshot("riscv64")
    assert db is not None
    plic = db.get("riscv.sifive.plic")
    assert plic is not None and plic.lines_after_realize is None and plic.probe_note
    info = types.type_info("riscv.sifive.plic", db)
    assert not info.lines_known
    assert info.output("unnamed-gpio-out") == types.LineInfo()  # unknown count, not "no such line"


def test_cached_database_is_found_without_qemu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MACHINEDESC_CACHE", str(tmp_path / "cache"))
    binary = tmp_path / "qemu-system-riscv64"
    binary.write_bytes(b"not really QEMU")
    shipped = typedb.snapshot("riscv64")
    assert shipped is not None
    runs: list[Path] = []

    def fake_run(path: Path, **_: object) -> TypeDatabase:
        runs.append(path)
        return TypeDatabase("riscv64", "QEMU 10.0.2", introspect.file_sha256(path), shipped.to_json()["types"],
                            raw=True)

    monkeypatch.setattr(introspect, "run", fake_run)
    assert typedb.cached(binary) is None
    assert typedb.database("riscv64", binary) is shipped  # nothing cached: the snapshot
    db = typedb.introspect(binary)
    again = typedb.introspect(binary)
    assert runs == [binary] and again.dumps() == db.dumps()
    found = typedb.cached(binary)
    assert found is not None and found.binary_sha256 == introspect.file_sha256(binary)
    assert typedb.database("riscv64", binary) is not shipped
    typedb.introspect(binary, refresh=True)
    assert len(runs) == 2
    binary.write_bytes(b"another QEMU")  # changed: not found any more
    assert typedb.cached(binary) is None
