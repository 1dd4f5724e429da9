"""Validation from the type data (qemu.typedb + the hand table), with small in-memory databases.

The shipped snapshots are exercised by tests/data/invalid (type-*, prop-*,
link-*, cpu-count-*, ...); here a made-up system ``testsys`` gets a database
of a few types, to pin down the rules: which facts are errors, which are
notes (a check that cannot be made is said, never skipped silently).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from machinedesc.board.typecheck import value_problem
from machinedesc.errors import BoardError
from machinedesc.plan.pipeline import load_plan
from machinedesc.qemu import typedb, types
from machinedesc.qemu.typedb import DeviceTypeInfo, GpioLines, PropertyInfo, TypeDatabase

SYSBUS = ("sys-bus-device", "device", "object")


def prop(name: str, qemu_type: str, kind: str, **more: Any) -> PropertyInfo:
    bounds = {"uint8": (0, 255), "uint32": (0, 2**32 - 1), "size": (0, 2**64 - 1), "int32": (-2**31, 2**31 - 1)}
    lo, hi = bounds.get(qemu_type, (None, None))
    fields: dict[str, Any] = {"minimum": lo, "maximum": hi, "enum_values": None, "link_type": None,
                              "default": None, "description": None}
    fields.update(more)
    return PropertyInfo(name=name, qemu_type=qemu_type, kind=kind, **fields)


def dev(name: str, ancestry: tuple[str, ...] = SYSBUS, props: tuple[PropertyInfo, ...] = (),
        lines: GpioLines | None = None, mmio: tuple[int, ...] | None = None, cpu: bool = False,
        note: str | None = None) -> DeviceTypeInfo:
    return DeviceTypeInfo(name=name, ancestry=ancestry, abstract=False, sysbus="sys-bus-device" in ancestry, cpu=cpu,
                          creatable=True, properties={p.name: p for p in props}, lines_before_realize=None,
                          lines_after_realize=lines, mmio_sizes=mmio, probe_note=note)


DB = TypeDatabase("testsys", "QEMU 10.0.2", None, {t.name: t for t in [
    dev("t-uart", props=(prop("chardev", "str", "chardev"), prop("fifo-depth", "uint8", "uint", default=16)),
        lines=GpioLines({}, {"sysbus-irq": 1}), mmio=(0x100,)),
    dev("t-intc", props=(prop("num-lines", "uint32", "uint", default=4),),
        lines=GpioLines({"unnamed-gpio-in": 4}, {"sysbus-irq": 1}), mmio=(0x1000,)),
    dev("t-bus-master", props=(prop("iommu", "link<t-iommu>", "link", link_type="t-iommu"),)),
    dev("t-iommu", mmio=(0x1000,)),
    dev("t-iommu-v2", ancestry=("t-iommu", *SYSBUS), mmio=(0x1000,)),
    dev("t-blob", note="realize needs a chardev"),
]})


@pytest.fixture(autouse=True)
def testsys(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    real = typedb.snapshot
    monkeypatch.setattr(typedb, "snapshot", lambda system: DB if system == "testsys" else real(system))
    types.system_database.cache_clear()
    types.system_type_info.cache_clear()
    yield
    types.system_database.cache_clear()
    types.system_type_info.cache_clear()


def plan_notes(tmp_path: Path, body: str) -> list[str]:
    board = tmp_path / "b.yaml"
    board.write_text("machinedesc: 1\nsystem: testsys\nchardevs: {serial0: stdio}\n" + body)
    return list(load_plan(board).notes)


def errors(tmp_path: Path, body: str) -> str:
    board = tmp_path / "b.yaml"
    board.write_text("machinedesc: 1\nsystem: testsys\nchardevs: {serial0: stdio}\n" + body)
    with pytest.raises(BoardError) as err:
        load_plan(board)
    return str(err.value)


def test_link_target_may_be_a_subtype(tmp_path: Path) -> None:
    body = "components:\n  m: {type: t-bus-master, links: {iommu: io}}\n  io: {type: t-iommu-v2, mmio: 0x1000}\n"
    assert plan_notes(tmp_path, body) == []
    err = errors(tmp_path, body.replace("t-iommu-v2", "t-uart"))
    assert "link 'iommu' of t-bus-master must point to a t-iommu (link<t-iommu>); 'io' is a t-uart" in err


def test_line_counts_from_the_database(tmp_path: Path) -> None:
    body = ("components:\n  a: {type: t-uart, mmio: 0x0}\n  b: {type: t-intc, mmio: 0x1000}\n"
            "wiring:\n  w: {from: 'a.sysbus-irq[0]', to: 'b.unnamed-gpio-in[5]'}\n")
    assert "a.sysbus-irq" not in errors(tmp_path, body)
    assert "b.unnamed-gpio-in[5]: index 5 out of range (b has 4 'unnamed-gpio-in' lines)" in errors(tmp_path, body)
    # A property that may change the count: the index is not checked, and a note says so.
    notes = plan_notes(tmp_path, body.replace("type: t-intc,", "type: t-intc, props: {num-lines: 8},"))
    assert any("b.unnamed-gpio-in[5]: t-intc has 4 'unnamed-gpio-in' lines with its default properties; "
               "b sets num-lines, so the index is not checked" in n for n in notes), notes


def test_regions_without_a_size_are_a_note_not_silence(tmp_path: Path) -> None:
    notes = plan_notes(tmp_path, "components:\n  x: {type: t-blob, mmio: 0x0}\n  y: {type: t-blob, mmio: 0x0}\n")
    assert len([n for n in notes if n.startswith("note: ")]) == 2
    assert "overlaps of x region 0 are not checked: the size of t-blob's region 0 is unknown " \
           "(realize needs a chardev)" in notes[0]


def test_measured_sizes_are_used_and_shaping_properties_noted(tmp_path: Path) -> None:
    body = "components:\n  a: {type: t-intc, mmio: 0x0}\n  b: {type: t-intc, mmio: 0x800}\n"
    assert "b region 0 [0x800, 0x17ff] overlaps a region 0 [0x0, 0xfff]" in errors(tmp_path, body)
    notes = plan_notes(tmp_path, body.replace("type: t-intc, mmio: 0x800", "type: t-intc, props: {num-lines: 2}, "
                                                                           "mmio: 0x800"))
    assert any("t-intc's region 0 is 0x1000 bytes with default properties; b sets num-lines" in n for n in notes)


def test_no_database_is_said_once(tmp_path: Path) -> None:
    board = tmp_path / "b.yaml"
    board.write_text("machinedesc: 1\nsystem: nosuch\ncomponents:\n  a: {type: x}\n  b: {type: y}\n")
    notes = load_plan(board).notes
    assert [n for n in notes if "type database" in n] == [
        "note: no type database for qemu-system-nosuch: only the hand-written types "
        "(qemu/data/qemu_types.yaml) are checked"]


@pytest.mark.parametrize("qemu_type, kind, value, expected", [
    ("bool", "bool", True, None),
    ("bool", "bool", "off", "'p' (bool) is a boolean; 'off' is a string"),
    ("uint8", "uint", 255, None),
    ("uint8", "uint", 256, "256 is out of range for 'p' (uint8): 0..255"),
    ("int32", "int", -5, None),
    ("uint32", "uint", "0x10", "'p' (uint32) is an integer, got the string '0x10'"),
    ("size", "size", "2 GB", "'2 GB' is not a size machinedesc reads"),
    ("size", "size", 1 << 40, None),
    ("OnOffAuto", "enum", "auto", None),
    ("OnOffAuto", "enum", "yes", "'p' (OnOffAuto) takes one of: on, off, auto; got 'yes'"),
    ("list", "array", [1, 2], None),
    ("list", "array", 3, "'p' (list) is a list, got 3"),
    ("str", "str", 7, "'p' (str) is a string, got 7"),
    ("busnr", "other", 7, None),
])
def test_value_problem(qemu_type: str, kind: str, value: Any, expected: str | None) -> None:
    enum = ("on", "off", "auto") if kind == "enum" else None
    found = value_problem(prop("p", qemu_type, kind, enum_values=enum), value)
    assert (found[0] if found else None) == expected


def test_validate_says_no_database_once_for_several_boards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from machinedesc.cli import main

    monkeypatch.setenv("MACHINEDESC_CACHE", str(tmp_path / "cache"))
    for name in ("a", "b"):
        (tmp_path / f"{name}.yaml").write_text("machinedesc: 1\nsystem: nosuch\ncomponents:\n  x: {type: y}\n")
    with pytest.raises(SystemExit) as exc:
        main(["validate", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")])
    out, err = capsys.readouterr()
    assert exc.value.code == 0 and out.count(": ok\n") == 2
    assert err.count("no type database for qemu-system-nosuch") == 1, err


def test_region_count_measured_with_defaults_is_a_note_when_a_property_may_change_it(tmp_path: Path) -> None:
    body = "components:\n  a: {type: t-intc, mmio: [{region: 1, addr: 0x0}]}\n"
    assert "t-intc has 1 MMIO region(s); region 1 does not exist" in errors(tmp_path, body)
    notes = plan_notes(tmp_path, body.replace("type: t-intc,", "type: t-intc, props: {num-lines: 8},"))
    assert any("t-intc has 1 MMIO region(s) with default properties; a sets num-lines, so region 1 is not checked"
               in n for n in notes), notes


def test_an_unknown_type_says_its_properties_are_not_checked(tmp_path: Path) -> None:
    """No close type: the type's error says its properties wait for the type (nothing is checked silently)."""
    err = errors(tmp_path, "components:\n  u: {type: zzz-nothing, props: {chardevv: serial0}, mmio: 0x0}\n")
    assert "components.u.type: qemu-system-testsys has no device type 'zzz-nothing'; its properties are not " \
           "checked until the type is known" in err
    assert "chardevv" not in err
    # Without properties there is nothing left unchecked to mention.
    err = errors(tmp_path, "components:\n  u: {type: zzz-nothing, mmio: 0x0}\n")
    assert "has no device type 'zzz-nothing'\n" in err + "\n" and "not checked" not in err


def test_an_unknown_type_with_one_clear_suggestion_has_its_property_names_checked_against_it(tmp_path: Path) -> None:
    err = errors(tmp_path, "components:\n  u: {type: t-uartt, props: {chardevv: serial0, fifo-depth: 8}, "
                           "mmio: 0x0}\n")
    assert "components.u.type: qemu-system-testsys has no device type 't-uartt'; its property names are checked " \
           "against 't-uart', their values not until the type is known\n  hint: did you mean 't-uart'?" in err
    assert "components.u.props.chardevv: t-uart (the type suggested for 't-uartt') has no property 'chardevv'\n" \
           "  hint: did you mean 'chardev'?" in err
    assert "fifo-depth" not in err


def test_a_property_that_may_shrink_a_measured_line_count_is_noted(tmp_path: Path) -> None:
    """An index below the count measured with default properties, but not below what a shaping property
    the board lowers may leave: the check cannot be sure, and a note names the property."""
    body = ("components:\n  a: {type: t-uart, mmio: 0x0}\n  b: {type: t-intc, props: {num-lines: 2}, mmio: 0x1000}\n"
            "wiring:\n  w: {from: 'a.sysbus-irq[0]', to: 'b.unnamed-gpio-in[3]'}\n")
    notes = plan_notes(tmp_path, body)
    assert any("b.unnamed-gpio-in[3]: checked only against the 4 'unnamed-gpio-in' lines t-intc has with its "
               "default properties; b sets num-lines to 2 (default 4): if the count follows it, index 3 is out of range" in n
               for n in notes), notes
    # A value that cannot lower the count below the index, or an index the value leaves room for: no note.
    assert not [n for n in plan_notes(tmp_path, body.replace("num-lines: 2", "num-lines: 8")) if "checked only" in n]
    assert not [n for n in plan_notes(tmp_path, body.replace("[3]", "[1]")) if "checked only" in n]
