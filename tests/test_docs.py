"""Docs stay in step: the format reference is generated from the schema, every field described."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from machinedesc.board.docgen import build_format_doc
from machinedesc.board.schema import board_schema

ROOT = Path(__file__).resolve().parent.parent


def test_format_doc_is_generated_from_the_schema() -> None:
    assert (ROOT / "docs" / "format.md").read_text(encoding="utf-8") == build_format_doc(), \
        "docs/format.md is stale: run python -m machinedesc.board.docgen"


def _walk(node: Any, path: str, out: list[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.get("properties", {}).items():
            if "description" not in value:
                out.append(f"{path}.{key}")
            _walk(value, f"{path}.{key}", out)
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                _walk(node[key], f"{path}.{key}", out)
        for key in ("oneOf", "anyOf"):
            for i, sub in enumerate(node.get(key, [])):
                _walk(sub, f"{path}.{key}[{i}]", out)


def test_every_field_has_a_description() -> None:
    schema = board_schema()
    missing: list[str] = []
    _walk(schema, "$", missing)
    for name, node in schema["$defs"].items():
        if "description" not in node:
            missing.append(f"$defs.{name}")
        _walk(node, f"$defs.{name}", missing)
    assert missing == []


def test_catalog_boards_point_editors_at_the_schema() -> None:
    for board in (ROOT / "boards").glob("*.yaml"):
        assert board.read_text().startswith("# yaml-language-server: $schema=../schemas/board.schema.json"), board


def test_format_doc_lists_the_whole_host_access_policy() -> None:
    """Every refused command, object, device and machine property is in docs/format.md with its reason."""
    from machinedesc.board import safety

    doc = (ROOT / "docs" / "format.md").read_text(encoding="utf-8")
    for table in (safety.HOST_COMMANDS, safety.HOST_OBJECTS, safety.HOST_DEVICE_PREFIXES, safety.HOST_MACHINE_PROPS):
        for name, why in table.items():
            assert f"| `{name}` | {why} |" in doc, name
    for name in (*safety.SAFE_CHARDEVS, *safety.SAFE_NETDEVS, *safety.HOST_OBJECT_PROPS):
        assert f"`{name}`" in doc, name


def _yaml_blocks(doc: Path) -> list[tuple[int, str]]:
    """The ```yaml blocks of a page, with the line each starts on."""
    import re

    text = doc.read_text()
    return [(text[:m.start()].count("\n") + 2, m.group(1)) for m in re.finditer(r"```yaml\n(.*?)```", text, re.S)]


def test_every_yaml_example_in_the_docs_parses() -> None:
    # A reader copies them: a flow mapping with an unquoted ${...} is a YAML syntax error.
    from ruamel.yaml import YAML

    for doc in sorted((ROOT / "docs").glob("*.md")):
        for line, block in _yaml_blocks(doc):
            try:
                YAML(typ="safe", pure=True).load(block)
            except Exception as err:  # any parse error, named with its place
                raise AssertionError(f"{doc.name}:{line}: {err}") from None


def test_the_first_board_of_the_format_doc_plans(tmp_path: Path) -> None:
    from machinedesc.plan.pipeline import load_plan

    (line, block), = [b for b in _yaml_blocks(ROOT / "docs" / "format.md") if "machinedesc: 1" in b[1]]
    board = tmp_path / "first.yaml"
    board.write_text(block)
    plan = load_plan(board)
    assert plan.system == "riscv64" and any(s.command == "x-sysbus-mmio-map" for s in plan.steps)


def test_command_synopses_in_the_docs_list_every_option() -> None:
    # A synopsis (`machinedesc CMD ... [--opt ...]`, with continuation lines) names each long
    # option of CMD's --help (short forms count: -v for --verbose), and only those.
    import re

    import click

    from machinedesc.cli import cli

    assert isinstance(cli, click.Group)
    seen = 0
    for doc in sorted((ROOT / "docs").glob("*.md")):
        text = doc.read_text()
        for m in re.finditer(r"^machinedesc ([a-z-]+) [^\n]*\[--[^\n]*(?:\n +\[[^\n]*)*", text, re.M):
            command = cli.commands.get(m.group(1))
            if command is None:
                continue
            seen += 1
            shown = set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", m.group(0)))
            options = [p for p in command.params if isinstance(p, click.Option) and "--help" not in p.opts]
            missing = [p.opts[-1] for p in options if not shown & set(p.opts)]
            known = {o for p in options for o in p.opts}
            assert not missing and shown - {"--"} <= known, (doc.name, m.group(1), missing, shown - known)
    assert seen >= 3
