"""Loader: positions, YAML hazards, and each include/merge rule of docs/format.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from machinedesc.board.includes import load_document
from machinedesc.board.located import LMap, location_of
from machinedesc.board.yaml_reader import parse_text
from machinedesc.errors import BoardError


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_positions_of_keys_values_and_items() -> None:
    tree = parse_text("machinedesc: 1\na:\n  b: [1, 0x10]\n", "x.yaml")
    assert location_of(tree, ("a", "b"), key=True) is not None
    assert str(location_of(tree, ("a", "b"), key=True)) == "x.yaml:3:3"
    assert str(location_of(tree, ("a", "b", 1))) == "x.yaml:3:10"
    assert tree["a"]["b"] == [1, 16]


def test_yaml_1_2_scalars() -> None:
    tree = parse_text("a: 010\nb: 0o17\nc: yes\nd: ~\ne: 'true'\nf: 1.5\n", "x.yaml")
    # YAML 1.2: 010 is decimal, yes is a string; quoted scalars stay strings.
    assert tree == {"a": 10, "b": 15, "c": "yes", "d": None, "e": "true", "f": 1.5}


@pytest.mark.parametrize("text,needle", [
    ("a: 1\na: 2\n", "duplicate key 'a'"),
    ("a: !!python/object:os.system x\n", "YAML tags are not allowed"),
    ("a: !custom x\n", "YAML tags are not allowed"),
    ("a: [1\n", "YAML syntax error"),
    ("a: 1\n---\nb: 2\n", "one YAML document"),
    ("a: " + "[" * 70 + "]" * 70 + "\n", "nesting deeper than 64"),
    ("a: *nowhere\n", "unknown alias"),
])
def test_hazards_are_refused(text: str, needle: str) -> None:
    with pytest.raises(BoardError) as err:
        parse_text(text, "x.yaml")
    assert needle in str(err.value)
    assert str(err.value).startswith("x.yaml:")


def test_alias_bomb_is_refused() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 8):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    with pytest.raises(BoardError) as err:
        parse_text("\n".join(lines) + "\n", "bomb.yaml")
    assert "alias bomb" in str(err.value)


def test_small_aliases_are_fine() -> None:
    tree = parse_text("base: &b {type: pl011}\nx: *b\n", "x.yaml")
    assert tree["x"] == {"type": "pl011"}


HEADER = "machinedesc: 1\nsystem: riscv64\n"


def test_maps_deep_merge_lists_replace_null_deletes(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", HEADER + "components:\n  a: {type: x, props: {p: 1, q: 2}}\n"
          "  b: {type: y}\nlist: [1, 2, 3]\n")
    top = write(tmp_path, "top.yaml", "machinedesc: 1\nextends: base.yaml\n"
                "components:\n  a: {props: {q: 3, r: 4}}\n  b: ~\nlist: [9]\n")
    tree = load_document(top).tree
    assert tree["components"] == {"a": {"type": "x", "props": {"p": 1, "q": 3, "r": 4}}}
    assert tree["list"] == [9]
    assert "extends" not in tree


def test_merge_order_extends_then_include_then_own(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", HEADER + "name: a\nsummary: from a\n")
    write(tmp_path, "b.yaml", "machinedesc: 1\nname: b\n")
    write(tmp_path, "frag.yaml", "machinedesc: 1\nname: frag\nsummary: from frag\n")
    top = write(tmp_path, "top.yaml", "machinedesc: 1\nextends: [a.yaml, b.yaml]\ninclude: frag.yaml\nname: top\n")
    tree = load_document(top).tree
    assert tree["name"] == "top"
    assert tree["summary"] == "from frag"


def test_positions_survive_the_merge(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", HEADER + "components:\n  a: {type: x}\n")
    top = write(tmp_path, "top.yaml", "machinedesc: 1\nextends: base.yaml\n")
    tree = load_document(top).tree
    loc = location_of(tree, ("components", "a", "type"))
    assert loc is not None and loc.file.endswith("base.yaml") and loc.line == 4
    assert loc.chain and loc.chain[0].file.endswith("top.yaml") and loc.chain[0].line == 2


def test_deleting_what_is_not_inherited_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", HEADER + "components:\n  uart0: {type: x}\n")
    top = write(tmp_path, "top.yaml", "machinedesc: 1\nextends: base.yaml\ncomponents:\n  uart1: ~\n")
    with pytest.raises(BoardError) as err:
        load_document(top)
    assert "nothing with this name is inherited" in str(err.value)
    assert "did you mean 'uart0'?" in str(err.value)


def test_include_loop(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "machinedesc: 1\nextends: b.yaml\n")
    write(tmp_path, "b.yaml", "machinedesc: 1\nextends: a.yaml\n")
    with pytest.raises(BoardError) as err:
        load_document(tmp_path / "a.yaml")
    assert "include loop" in str(err.value)


def test_include_may_not_escape_the_catalog(tmp_path: Path) -> None:
    write(tmp_path, "outside.yaml", HEADER)
    top = write(tmp_path, "cat/top.yaml", "machinedesc: 1\nextends: ../outside.yaml\n")
    with pytest.raises(BoardError) as err:
        load_document(top)
    assert "outside the catalog root" in str(err.value)
    assert isinstance(load_document(top, catalog=tmp_path).tree, LMap)


def test_every_file_needs_the_version(tmp_path: Path) -> None:
    write(tmp_path, "base.yaml", "system: riscv64\n")
    top = write(tmp_path, "top.yaml", "machinedesc: 1\nextends: base.yaml\n")
    with pytest.raises(BoardError) as err:
        load_document(top)
    assert "missing 'machinedesc: 1'" in str(err.value)
    assert "included from" in str(err.value)


def test_boards_are_read_by_the_c_parser() -> None:
    """libyaml's parser (ruamel.yaml.clib) is installed and is what reads boards.

    The pure-Python fallback words errors differently (docs/format.md, "The
    YAML reader"): an install that lacks the extension must fail here.
    """
    import importlib

    from _ruamel_yaml import CParser

    from machinedesc.board.yaml_reader import yaml_events

    events = list(yaml_events("a: 1\n"))
    assert [type(e).__name__ for e in events][:3] == ["StreamStartEvent", "DocumentStartEvent", "MappingStartEvent"]
    # A compiled extension, not a Python module standing in for one.
    assert str(importlib.import_module(CParser.__module__).__file__).endswith(".so")
    with pytest.raises(BoardError) as err:
        parse_text("a: [1, 2\n", "x.yaml")
    # libyaml's wording (the pure parser says "while parsing a flow sequence").
    assert "did not find expected ',' or ']'" in str(err.value)


def test_without_the_c_parser_machinedesc_says_what_to_install(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """No silent fallback: exit 1, a message naming the package, no traceback."""
    import sys

    from machinedesc.cli import main

    board = write(tmp_path, "b.yaml", "machinedesc: 1\n")
    monkeypatch.setitem(sys.modules, "_ruamel_yaml", None)  # makes the import fail
    with pytest.raises(SystemExit) as exc:
        main(["validate", str(board)])
    err = capsys.readouterr().err
    assert exc.value.code == 1
    assert "ruamel.yaml's C parser is not installed" in err and "ruamel.yaml.clib" in err
    assert "Traceback" not in err


def test_type_may_be_an_expression(tmp_path: Path) -> None:
    from machinedesc.plan.pipeline import load_board

    board = write(tmp_path, "b.yaml", HEADER + "params: {cpu: cortex-a57-arm-cpu, n: 2}\ncomponents:\n"
                  "  c0: {type: cpu-cluster}\n  cpu${i}: {count: 2, type: '${cpu}', parent: c0}\n"
                  "  bad: {type: '${n}'}\n")
    with pytest.raises(BoardError) as err:
        load_board(board)
    assert [str(p.location) + ": " + p.message for p in err.value.problems] == [
        f"{board}:7:15: type must be a QEMU type name, got 2"]
    board.write_text(board.read_text().replace("  bad: {type: '${n}'}\n", ""))
    assert [c.type for c in load_board(board).components] == ["cpu-cluster", *["cortex-a57-arm-cpu"] * 2]
