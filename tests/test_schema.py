"""Schema stage: errors land on the right token, and the per-shape cache hides nothing."""

from __future__ import annotations

from machinedesc.board.schema import validate
from machinedesc.board.yaml_reader import parse_text
from machinedesc.errors import Collector


def problems(text: str) -> list[str]:
    found = Collector()
    validate(parse_text(text, "b.yaml"), found)
    return sorted(p.render() for p in found.problems)


def test_same_shape_other_values_still_validated() -> None:
    # Two entries that differ only in an integer's sign have different shapes:
    # the second one's negative size must not hide behind the first's success.
    text = ("machinedesc: 1\nsystem: riscv64\ncomponents:\n"
            "  a: {type: t, mmio: [{addr: 1, size: 4}]}\n"
            "  b: {type: t, mmio: [{addr: 2, size: -4}]}\n")
    assert problems(text) == ["b.yaml:5:39: components.b.mmio[0].size: -4 is below 0"]


def test_every_bad_entry_is_reported() -> None:
    body = "".join(f"  u{i}: {{type: t, mmio: 'x{i}'}}\n" for i in range(3))
    found = problems("machinedesc: 1\nsystem: riscv64\ncomponents:\n" + body)
    assert len(found) == 3
    assert all("is not valid here" in p for p in found)


def test_null_where_a_choice_is_expected() -> None:
    found = problems("machinedesc: 1\nsystem: riscv64\ncomponents:\n  r: {type: pl011, mmio: }\n")
    assert found == ["b.yaml:4:26: components.r.mmio: expected an integer or a string or a list, got null\n"
                     "  hint: Where the device's MMIO regions are mapped: an address (region 0), "
                     "or a list of mappings."]


def test_lines_that_match_the_same_patterns_share_a_shape_but_a_bad_one_does_not() -> None:
    # Wires differ only in their lines' text, which the schema only matches against the
    # line pattern: the shape keeps whether it matches, so a bad line is still reported.
    body = "".join(f"  w{i}: {{from: 'u{i}.irq[0]', to: 'h{i}.in[1]'}}\n" for i in range(3))
    found = problems("machinedesc: 1\nsystem: riscv64\nwiring:\n" + body + "  bad: {from: 'u9.irq[0]', to: 'h9 .in'}\n")
    assert found == ["b.yaml:7:32: wiring.bad.to: \"h9 .in\" is not valid here\n"
                     "  hint: write a line as component.line[index], e.g. uart0.sysbus-irq[0]"]


def test_a_string_that_an_enum_reads_keeps_its_text() -> None:
    from machinedesc.board.schema import _shape, _validator

    wire = _validator().schema["properties"]["wiring"]["additionalProperties"]
    assert _shape({"from": "a.b[0]", "to": "c.d", "join": "or"}, wire) != _shape(
        {"from": "a.b[0]", "to": "c.d", "join": "and"}, wire)
    assert _shape({"from": "a.b[0]", "to": "c.d"}, wire) == _shape({"from": "x.y[3]", "to": "z.w"}, wire)
