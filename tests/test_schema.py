"""Schema stage: errors land on the right token, and the per-shape cache hides nothing."""

from __future__ import annotations

from machinedesc.errors import Collector
from machinedesc.loader import parse_text
from machinedesc.schema import validate


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
