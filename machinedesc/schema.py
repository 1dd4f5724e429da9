"""The JSON Schema stage: validate a located tree, report every violation at its position."""

from __future__ import annotations

import functools
import json
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from .errors import Collector
from .loader import LMap, PathT, did_you_mean, format_path, location_of

SCHEMA_NAME = "board.schema.json"


@functools.cache
def schema_text() -> str:
    """The board schema as shipped (inside the wheel, or the source tree's schemas/)."""
    try:
        return resources.files("machinedesc.schemas").joinpath(SCHEMA_NAME).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return (Path(__file__).resolve().parent.parent / "schemas" / SCHEMA_NAME).read_text(encoding="utf-8")


@functools.cache
def board_schema() -> dict[str, Any]:
    """The board schema, parsed."""
    result: dict[str, Any] = json.loads(schema_text())
    return result


@functools.cache
def _validator() -> jsonschema.Draft202012Validator:
    # Local $refs inlined: resolving them on every component costs a third of
    # the validation time of a large board.
    schema = board_schema()
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


def validate(tree: LMap, problems: Collector) -> None:
    """Add one problem per schema violation in ``tree``."""
    for error in _validator().iter_errors(tree):
        _report(tree, _most_specific(error), problems)


def _most_specific(error: ValidationError) -> ValidationError:
    # oneOf/anyOf errors hide the useful reason in their context.
    # oneOf/anyOf errors hide the useful reason in their context; a branch
    # that failed only on its type is rarely the one the user meant.
    while error.context:
        meant = [e for e in error.context if e.validator != "type"]
        if not meant:
            break
        error = best_match(meant)
    return error


def _report(tree: LMap, error: ValidationError, problems: Collector) -> None:
    path: PathT = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = error.schema.get("properties", {})
        for key in error.instance:
            if key not in allowed:
                problems.add(location_of(tree, (*path, key), key=True), format_path((*path, key)),
                             "unknown key", did_you_mean(key, allowed))
        return
    if error.validator == "propertyNames":
        problems.add(location_of(tree, (*path, error.instance), key=True),
                     format_path((*path, error.instance)), f"invalid name '{error.instance}'",
                     "names start with a letter and use letters, digits, '_', '.', '-'")
        return
    message, hint = _explain(error)
    problems.add(location_of(tree, path), format_path(path), message, hint)


def _explain(error: ValidationError) -> tuple[str, str | None]:
    """A plain-words message (and hint) for a schema violation."""
    value = error.instance
    shown = _shown(value)
    if error.validator == "required":
        return error.message.replace("is a required property", "is required"), None
    if error.validator == "enum":
        choices = ", ".join(str(c) for c in error.validator_value)
        return f"{shown} is not one of: {choices}", did_you_mean(str(value), error.validator_value)
    if error.validator == "const":
        return f"must be {json.dumps(error.validator_value)}, not {shown}", None
    if error.validator == "type":
        return f"expected {_types(error.validator_value)}, got {shown}", None
    if error.validator in ("oneOf", "anyOf") and error.context:
        wanted: list[str] = []
        for sub in error.context:
            for t in sub.validator_value if isinstance(sub.validator_value, list) else [sub.validator_value]:
                if t not in wanted:
                    wanted.append(t)
        return f"expected {_types(wanted)}, got {shown}", error.schema.get("description")
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
    return None
