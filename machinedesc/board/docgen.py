"""Generates docs/format.md's reference part from the schema's descriptions, so they cannot drift.

Run ``python -m machinedesc.board.docgen`` after changing schemas/board.schema.json
or docs/format.intro.md; a test fails while docs/format.md is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .schema import board_schema

DOCS = Path(__file__).resolve().parents[2] / "docs"
MARKER = "<!-- generated from schemas/board.schema.json by `python -m machinedesc.board.docgen`; do not edit below -->"


def _type_of(node: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in defs and "properties" in defs[name]:
            return f"[{name}](#{name.replace('_', '-')})"
        return _type_of(defs[name], defs)
    if "const" in node:
        return f"`{node['const']}`"
    if "enum" in node:
        return " \\| ".join(f"`{v}`" for v in node["enum"])
    for key in ("oneOf", "anyOf"):
        if key in node:
            return " or ".join(dict.fromkeys(_type_of(n, defs) for n in node[key]))
    kind = node.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(kind)
    if kind == "array" and "items" in node:
        return f"list of {_type_of(node['items'], defs)}"
    if kind == "object" and "additionalProperties" in node and isinstance(node["additionalProperties"], dict):
        return f"map of name to {_type_of(node['additionalProperties'], defs)}"
    if kind == "string" and "pattern" in node:
        return "string (expression)" if node["pattern"].startswith("^\\$") else "string"
    return str(kind)


def _object_section(title: str, anchor: str, node: dict[str, Any], defs: dict[str, Any]) -> list[str]:
    lines = [f"### {title}", f'<a id="{anchor}"></a>', "", node.get("description", ""), "",
             "| key | type | required | description |", "|---|---|---|---|"]
    required = {key: "yes" for key in node.get("required", ())}
    # `if: (no extends/include) then: required`: a variant may take the key from its base.
    required.update({key: "yes, unless it extends or includes" for key in node.get("then", {}).get("required", ())})
    for key, sub in node.get("properties", {}).items():
        desc = sub.get("description", "").replace("|", "\\|")
        lines.append(f"| `{key}` | {_type_of(sub, defs)} | {required.get(key, '')} | {desc} |")
    return [*lines, ""]


def render_reference() -> str:
    """The reference part of docs/format.md."""
    schema = board_schema()
    defs = schema["$defs"]
    out = ["## Reference", "", schema["description"], ""]
    out += _object_section("Board (top level)", "board", schema, defs)
    for name, node in defs.items():
        if "properties" in node:
            out += _object_section(name, name.replace("_", "-"), node, defs)
        elif "description" in node:
            out += [f"### {name}", f'<a id="{name.replace("_", "-")}"></a>', "", node["description"], ""]
    for name, node in schema["properties"].items():
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and "properties" in extra:
            out += _object_section(f"{name} entry", f"{name}-entry", extra, defs)
    return "\n".join(out).rstrip() + "\n"


def build_format_doc() -> str:
    """docs/format.md: the hand-written guide (docs/format.intro.md) plus the reference."""
    intro = (DOCS / "format.intro.md").read_text(encoding="utf-8").rstrip()
    return f"{intro}\n\n{MARKER}\n\n{render_reference()}"


def main() -> None:
    """Rewrite docs/format.md."""
    (DOCS / "format.md").write_text(build_format_doc(), encoding="utf-8")
    print(f"wrote {DOCS / 'format.md'}", file=sys.stderr)


if __name__ == "__main__":
    main()
