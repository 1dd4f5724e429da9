"""The JSON Schema stage: validate a located tree, report every violation at its position.

jsonschema is imported when a tree is validated, not with this module:
``machinedesc schema`` (``schema_text``) and the docs generator need only the text.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import Collector, Hints
from .located import LMap, PathT, format_path, location_of

if TYPE_CHECKING:
    import jsonschema
    from jsonschema.exceptions import ValidationError

SCHEMA_NAME = "board.schema.json"


@functools.cache
def schema_text() -> str:
    """The board schema: the source tree's schemas/ next to this package, else the one shipped in the wheel.

    The source tree comes first: an editable install maps machinedesc.schemas
    to the checkout it was installed from, which is not this one in a second
    git worktree.
    """
    source = Path(__file__).resolve().parents[2] / "schemas" / SCHEMA_NAME
    if source.is_file():
        return source.read_text(encoding="utf-8")
    return resources.files("machinedesc.schemas").joinpath(SCHEMA_NAME).read_text(encoding="utf-8")


@functools.cache
def board_schema() -> dict[str, Any]:
    """The board schema, parsed."""
    result: dict[str, Any] = json.loads(schema_text())
    return result


#: What a fragment file may hold (docs/format.md, "Fragments"): no system, no includes, no fragments.
FRAGMENT_KEYS = ("machinedesc", "summary", "params", "requires", "components", "wiring")


@functools.cache
def _validator(fragment: bool = False) -> jsonschema.Draft202012Validator:
    # Local $refs inlined: resolving them on every component costs a third of
    # the validation time of a large board.
    import jsonschema

    schema = board_schema()
    if fragment:
        schema = {**{k: v for k, v in schema.items() if k not in ("if", "then")}, "required": ["machinedesc"],
                  "properties": {k: v for k, v in schema["properties"].items() if k in FRAGMENT_KEYS}}
    return jsonschema.Draft202012Validator(_inline_refs(schema, schema["$defs"]))


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = _inline_refs(defs[ref.removeprefix("#/$defs/")], defs)
            return {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return {k: _inline_refs(v, defs) for k, v in node.items()}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


#: Top-level maps whose entries are validated one by one, each distinct shape once.
_ENTRY_MAPS = ("components", "wiring")


def validate_fragments(fragments: dict[str, LMap], problems: Collector) -> None:
    """Validate each fragment file once (a file used twice is the same text)."""
    seen: set[str] = set()
    for tree in fragments.values():
        if tree.pos[0] not in seen:
            seen.add(tree.pos[0])
            validate(tree, problems, fragment=True)


def validate(tree: LMap, problems: Collector, *, fragment: bool = False) -> set[tuple[str, str]] | None:
    """Add one problem per schema violation in ``tree`` (a fragment file's rules with ``fragment``);
    return the entries that hold one.

    The result is the (section, key) of every ``components``/``wiring`` entry
    with a violation, or None when something outside those entries is wrong:
    the rest of a tree with a non-None result is schema-valid (``usable_part``).

    Large boards repeat the same entry thousands of times with other numbers
    and names; entries are validated one by one and an entry whose shape (see
    ``_shape``) already validated cleanly is not validated again.
    """
    validator = _validator(fragment)
    top = dict(tree)
    for name in _ENTRY_MAPS:
        if isinstance(top.get(name), dict):
            top[name] = {}
    broken: set[tuple[str, str]] | None = set()
    if _check(validator, tree, top, (), problems):
        broken = None
    properties = validator.schema["properties"]
    for name in _ENTRY_MAPS:
        entries = tree.get(name)
        if not isinstance(entries, dict):
            continue
        names = {k: None for k in entries}
        map_schema = properties[name]
        if "propertyNames" in map_schema:
            names_validator = validator.evolve(schema={"propertyNames": map_schema["propertyNames"]})
            for error in names_validator.iter_errors(names):
                _report(tree, error, problems, (name,))
                if broken is not None:
                    broken.add((name, str(error.instance)))
        entry_schema = map_schema["additionalProperties"]
        entry_validator = validator.evolve(schema=entry_schema)
        clean: set[Any] = set()
        for key, body in entries.items():
            shape = _shape(body, entry_schema)
            if shape in clean:
                continue
            if not _check(entry_validator, tree, body, (name, key), problems):
                clean.add(shape)
            elif broken is not None:
                broken.add((name, key))
    return broken


def usable_part(tree: LMap, broken: set[tuple[str, str]]) -> LMap:
    """``tree`` without the ``broken`` entries (see ``validate``): what semantic checks can still read."""
    out = _copy_map(tree)
    for name in _ENTRY_MAPS:
        entries = tree.get(name)
        if isinstance(entries, LMap):
            part = _copy_map(entries, {k for section, k in broken if section == name})
            out[name] = part
    return out


def _copy_map(node: LMap, without: set[str] | frozenset[str] = frozenset()) -> LMap:
    out = LMap(node.pos)
    for key, value in node.items():
        if key in without:
            continue
        out[key] = value
        out.key_locs[key] = node.key_locs[key]
        out.value_locs[key] = node.value_locs[key]
    return out


def _check(validator: jsonschema.Draft202012Validator | None, tree: LMap, instance: Any, prefix: PathT,
           problems: Collector) -> bool:
    """Report the errors of ``instance`` (found at ``prefix`` in ``tree``); True if there were any."""
    if validator is None:
        return False
    found = False
    for error in validator.iter_errors(instance):
        found = True
        for specific in _most_specific(error):
            _report(tree, specific, problems, prefix)
    return found


def _shape(value: Any, schema: Any) -> Any:
    """What the schema can see of ``value``: equal shapes validate alike.

    Integers keep only their sign (the schema's only numeric bound is a
    minimum of 0); strings become which of the schema's patterns they match
    (none, where it accepts any string; a line in a wire's ``from``: the line
    pattern) unless the schema could tell two strings apart otherwise (an
    enum); everything else is kept.
    """
    if isinstance(value, bool) or value is None:
        return ("b", value)
    if isinstance(value, int):
        return ("i", (value > 0) - (value < 0))
    if isinstance(value, str):
        patterns = _string_patterns(schema)
        if patterns is None:
            return ("s", value)
        return ("p", tuple(p.search(value) is not None for p in patterns))  # as jsonschema's pattern keyword
    if isinstance(value, dict):
        props = schema.get("properties", {}) if isinstance(schema, dict) else {}
        extra = schema.get("additionalProperties") if isinstance(schema, dict) else None
        return ("m", tuple(sorted((k, _shape(v, props.get(k, extra))) for k, v in value.items())))
    if isinstance(value, list):
        items = schema.get("items") if isinstance(schema, dict) else None
        return ("l", tuple(_shape(v, items) for v in value))
    return ("x", repr(value))


#: Keywords that do not look at a string's text: for a string, a schema made of
#: these and ``pattern`` validates alike every string that matches the same patterns.
_BLIND_TO_TEXT = frozenset({"type", "description", "oneOf", "anyOf", "items", "minItems", "properties",
                            "additionalProperties", "required", "minimum"})
#: id(schema) -> (schema, its patterns): computed once per node of the (cached) schema.
_PATTERNS: dict[int, tuple[Any, tuple[re.Pattern[str], ...] | None]] = {}


def _string_patterns(schema: Any) -> tuple[re.Pattern[str], ...] | None:
    """The patterns of ``schema`` and its oneOf/anyOf branches, or None if some other keyword could
    tell two strings apart."""
    hit = _PATTERNS.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    found: list[re.Pattern[str]] | None = [] if isinstance(schema, dict) else None
    for key, sub in schema.items() if isinstance(schema, dict) else ():
        branches = [_string_patterns(b) for b in sub] if key in ("oneOf", "anyOf") else []
        if found is None or (key not in _BLIND_TO_TEXT and key != "pattern") or None in branches:
            found = None
            break
        if key == "pattern":
            found.append(re.compile(sub))
        for branch in branches:
            found.extend(branch or ())
    result = None if found is None else tuple(found)
    _PATTERNS[id(schema)] = (schema, result)
    return result


def _most_specific(error: ValidationError) -> list[ValidationError]:
    """The errors inside a oneOf/anyOf that the user most likely meant.

    The meant branch is the one whose errors reach deepest into the value (it
    matched the most structure), preferring errors other than a wrong type;
    if every branch only disagrees on the type, the parent error stands (and
    says which types would do).
    """
    if not error.context:
        return [error]
    branches: dict[Any, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).extend(_leaves(sub))

    def score(leaves: list[ValidationError]) -> tuple[int, bool]:
        depth = max(len(e.absolute_path) for e in leaves)
        return depth, any(e.validator != "type" for e in leaves if len(e.absolute_path) == depth)

    best = max(branches.values(), key=score)
    depth, meaningful = score(best)
    if depth <= len(error.absolute_path) and not meaningful:
        return [error]
    by_path: dict[tuple[Any, ...], list[ValidationError]] = {}
    for leaf in best:
        by_path.setdefault(tuple(leaf.absolute_path), []).append(leaf)
    from jsonschema.exceptions import best_match

    chosen = []
    for errs in by_path.values():
        meant = [e for e in errs if e.validator != "type"]
        parent = errs[0].parent
        if not meant and len(errs) > 1 and parent is not None and parent.validator in ("oneOf", "anyOf"):
            chosen.append(parent)  # only the type is wrong: say which types would do
        else:
            chosen.append(best_match(meant or errs))
    return chosen


def _leaves(error: ValidationError) -> list[ValidationError]:
    if not error.context:
        return [error]
    out: list[ValidationError] = []
    for sub in error.context:
        out.extend(_leaves(sub))
    return out


_NAME_HINT = "names start with a letter and use letters, digits, '_', '.', '-'"
#: propertyNames patterns of the schema -> what to tell the user.
_NAME_HINTS = {
    "^[A-Za-z_][A-Za-z0-9_]*$": "parameter names are identifiers: letters, digits and '_', not starting with a digit",
    "^(/[A-Za-z0-9,._+-]{1,31}(@[A-Za-z0-9,._+-]+)?)+$|^/$":
        "write an absolute device-tree path, e.g. /chosen or /soc/serial@10000000: node names of at most "
        "31 letters, digits and , . _ + -",
    "^[A-Za-z0-9,._+?#-]{1,31}$": "device-tree property names have at most 31 letters, digits and , . _ + ? # -",
}


def _report(tree: LMap, error: ValidationError, problems: Collector, prefix: PathT = ()) -> None:
    path: PathT = (*prefix, *error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = error.schema.get("properties", {})
        for key in error.instance:
            if key not in allowed:
                problems.add(location_of(tree, (*path, key), key=True), format_path((*path, key)),
                             "unknown key", problems.hints.did_you_mean(key, allowed))
        return
    if "propertyNames" in error.relative_schema_path:
        problems.add(location_of(tree, (*path, error.instance), key=True),
                     format_path((*path, error.instance)), f"invalid name '{error.instance}'",
                     _NAME_HINTS.get(str(error.validator_value), _NAME_HINT))
        return
    message, hint = _explain(error, problems.hints)
    # A missing key is the entry's fault: point at the entry's own key.
    where = location_of(tree, path, key=error.validator == "required" and bool(path))
    problems.add(where, format_path(path), message, hint)


def _explain(error: ValidationError, hints: Hints) -> tuple[str, str | None]:
    """A plain-words message (and hint) for a schema violation."""
    value = error.instance
    shown = _shown(value)
    if error.validator == "required":
        return error.message.replace("is a required property", "is required"), None
    if error.validator == "dependentRequired" and isinstance(value, dict):
        # Only mmio has one: offset needs size (a window of a region has both).
        needs = {k: [n for n in v if n not in value] for k, v in error.validator_value.items() if k in value}
        key, missing = next((k, m) for k, m in needs.items() if m)
        return (f"'{key}' needs {', '.join(repr(m) for m in missing)}",
                "a window of a region is written {addr: ..., offset: ..., size: ...}")
    if error.validator == "enum":
        choices = ", ".join(str(c) for c in error.validator_value)
        return f"{shown} is not one of: {choices}", hints.did_you_mean(str(value), error.validator_value)
    if error.validator == "const":
        return f"must be {json.dumps(error.validator_value)}, not {shown}", None
    if error.validator == "type":
        return f"expected {_types(error.validator_value)}, got {shown}", None
    if error.validator in ("oneOf", "anyOf") and error.context:
        wanted: list[str] = []
        for sub in _leaves(error):
            if sub.validator != "type":
                continue
            for t in sub.validator_value if isinstance(sub.validator_value, list) else [sub.validator_value]:
                if t not in wanted:
                    wanted.append(t)
        if wanted:
            return f"expected {_types(wanted)}, got {shown}", error.schema.get("description")
        return f"{shown} is not valid here", error.schema.get("description")
    if error.validator == "pattern":
        return f"{shown} is not valid here", _pattern_hint(error.validator_value)
    if error.validator == "minItems":
        return f"needs at least {error.validator_value} entries", None
    if error.validator == "minimum":
        return f"{shown} is below {error.validator_value}", None
    return error.message, None


_TYPE_WORDS = {"object": "a mapping", "array": "a list", "integer": "an integer", "string": "a string",
               "boolean": "a boolean", "number": "a number", "null": "null"}


def _types(want: str | list[str]) -> str:
    names = want if isinstance(want, list) else [want]
    if "number" in names and "integer" in names:
        names = [n for n in names if n != "integer"]
    return " or ".join(_TYPE_WORDS.get(n, n) for n in names)


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return json.dumps(value)


def _pattern_hint(pattern: str) -> str | None:
    if "KiB" in pattern:
        return "write sizes as an integer or with a binary unit, e.g. 128 MiB"
    if pattern.startswith("^\\$"):
        return "write an integer or a ${...} expression"
    if "\\." in pattern:
        return "write a line as component.line[index], e.g. uart0.sysbus-irq[0]"
    if pattern == "^[a-z0-9_]+$":
        return "the lower-case name in qemu-system-<system>: riscv64, aarch64, ..."
    if pattern == "^[A-Za-z0-9,._+-]{1,31}$":
        return "device-tree node names have at most 31 letters, digits and , . _ + -"
    return None
