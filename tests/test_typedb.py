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
    unknown = types.type_info("xlnx.xps-intc")
    assert not unknown.known and unknown.output("anything") == types.LineInfo()


def test_type_info_merges_the_table_over_the_database() -> None:
    db = typedb.snapshot("riscv64")
    assert db is not None
    uart = types.type_info("serial-mm", db)
    # The table's expression wins over the size measured with default properties.
    assert uart.mmio == ("8 << regshift",) and not uart.mmio_from_defaults
    assert uart.chardevs == ("chardev",) and uart.properties is not None and "regshift" in uart.properties
    # A type the table lacks: everything from the database.
    intc = types.type_info("xlnx.xps-intc", db)
    assert intc.known and intc.sysbus and intc.lines_known and intc.mmio_from_defaults
    assert intc.mmio == (0x20,)  # R_MAX * 4, hw/intc/xilinx_intc.c
    assert intc.output("sysbus-irq") == types.LineInfo(1, after_realize=False)
    assert intc.input("unnamed-gpio-in") == types.LineInfo(32, after_realize=False)  # made by instance_init
    # The table's entry, merged over the database: the pins follow ngpio (hw/gpio/sifive_gpio.c).
    gpio = types.type_info("sifive_soc.gpio", db)
    assert gpio.mmio == (0x100,) and gpio.mmio_from_defaults  # SIFIVE_GPIO_SIZE, from the database
    assert gpio.output("sysbus-irq") == types.LineInfo("ngpio", after_realize=True)
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
    ivshmem = db.get("ivshmem-flat")  # realize needs a server socket
    assert ivshmem is not None and ivshmem.lines_after_realize is None and ivshmem.probe_note
    info = types.type_info("ivshmem-flat", db)
    assert not info.lines_known
    assert info.output("sysbus-irq") == types.LineInfo(1, after_realize=False)  # made by instance_init
    assert info.output("unnamed-gpio-out") == types.LineInfo()  # realize may add it: unknown, not "no such line"
    # Probed with the properties of probe_properties.yaml: the PLIC's lines are known, and it needs the CPUs;
    # the hand table says how the count follows num-sources (the probe measured 96 with its values).
    plic = types.type_info("riscv.sifive.plic", db)
    assert plic.lines_known and plic.realize_after_cpus and plic.input("unnamed-gpio-in") == types.LineInfo("num_sources")


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


def test_any_json_layout_loads_the_same() -> None:
    import json

    db = typedb.snapshot("aarch64")
    assert db is not None
    compact = TypeDatabase.loads(json.dumps(db.to_json()))
    assert compact.dumps() == db.dumps()


def test_a_damaged_type_line_fails_when_looked_up() -> None:
    db = typedb.snapshot("riscv64")
    assert db is not None
    text = db.dumps().replace('"serial-mm": {"ancestry"', '"serial-mm": {"ancestry" oops', 1)
    damaged = TypeDatabase.loads(text)
    assert damaged.get("pl011") is None and damaged.get("sifive_soc.gpio") is not None
    with pytest.raises(TypeDatabaseError, match="damaged entry for type 'serial-mm'"):
        damaged.get("serial-mm")


def test_probe_properties_come_from_the_probe_table() -> None:
    from machinedesc.qemu import probe

    assert probe.probe_properties("riscv.sifive.plic")["hart-config"] == "MS"
    assert probe.probe_properties("xlnx.xps-uartlite") == {"endianness": "little"}  # a pattern
    assert probe.probe_properties("serial-mm") == {}
    db = typedb.snapshot("riscv64")
    assert db is not None
    plic = db.get("riscv.sifive.plic")
    assert plic is not None and plic.probe_properties is not None and plic.probe_properties["num-sources"] == 96
    uart = db.get("serial-mm")
    assert uart is not None and uart.probe_properties is None


def test_mtree_sizes() -> None:
    from machinedesc.qemu import probe

    tree = ("address-space: pl080\r\naddress-space: memory\r\n"
            "  0000000000000000-ffffffffffffffff (prio 0, i/o): system\r\n"
            "    0000010000000000-0000010000000007 (prio 0, i/o): serial\r\n"
            "      0000010000000000-0000010000000003 (prio 0, i/o): inner\r\n"
            "[DETECTED OVERFLOW!]     0000020000000000-000001ffffffffff (prio 0, i/o): window\r\n\r\n"
            "address-space: I/O\r\n  0000000000000000-000000000000ffff (prio 0, i/o): io\r\n"
            "    0000030000000000-0000030000000fff (prio 0, i/o): not-memory\r\n")
    assert probe._mtree_sizes(tree) == {1 << 40: 8, 2 << 40: 2**64}


def test_cpus_created_by_a_device() -> None:
    db = typedb.snapshot("riscv64")
    assert db is not None
    harts = db.get("riscv.hart_array")
    assert harts is not None and harts.cpus_created == 1  # num-harts 1 by default
    uart = db.get("serial-mm")
    assert uart is not None and uart.cpus_created == 0
    plic = db.get("ivshmem-flat")
    assert plic is not None and plic.cpus_created is None  # not realized: unknown
