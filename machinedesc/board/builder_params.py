"""The board's ``params:`` with ``--set`` overrides -> the environment ``${...}`` values are computed in.

Also the names a parameter may not take (``i``, ``id``) and the hint for a
``requires:`` check that is not a comparison.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .builder_values import Builder
from .expr import ExprError, parse_size
from .yaml_scalars import LiteralError, resolve_plain

#: The hint for a requirement whose check is not a comparison.
REWRITE_CHECK = "a check is a comparison: ${harts >= 1}, ${1 <= contexts <= 2}, ${mode == 'MS'}"


#: Names the builder binds itself, by where: a parameter of the same name would be shadowed
#: inside an entry with count (``i``, the copy index) or in a fragment (``id``, the using entry's key).
RESERVED_PARAMS = {"i": "inside an entry with count, ${i} is the copy index",
                   "id": "in a fragment, ${id} is the key of the entry that uses it"}


def reserved_param(b: Builder, name: str, names: tuple[str, ...]) -> bool:
    """Report a parameter named like one of ``names`` (RESERVED_PARAMS) at its key; True if it is."""
    if name not in names:
        return False
    b.err(("params", name), f"'{name}' cannot be a parameter: {RESERVED_PARAMS[name]}, which would hide it",
          "rename the parameter to a name that says what it is", key=True)
    return True


def params_of(b: Builder, overrides: Mapping[str, str]) -> dict[str, Any]:
    declared = b.tree.get("params", {})
    params: dict[str, Any] = {}
    for name, raw in declared.items():
        reserved_param(b, name, ("i",))
        try:
            params[name] = typed_param(raw)
        except ExprError as err:
            b.err(("params", name), err.message, err.hint)
            params[name] = 0  # reported; a stand-in keeps its uses from adding "not defined"
    for name, text in overrides.items():
        if name not in declared:
            hint = b.problems.hints.did_you_mean(name, declared) or (
                f"parameters of this board: {', '.join(sorted(declared))}" if declared else "this board has no params:")
            b.problems.add(None, f"--set {name}", f"'{name}' is not a parameter of {b.file}", hint)
            continue
        try:
            value = typed_param(resolve_plain(text))
        except (ExprError, LiteralError) as err:
            b.problems.add(None, f"--set {name}", str(err))
            continue
        default = params[name]
        if _kind(value) != _kind(default):
            b.problems.add(None, f"--set {name}",
                           f"'{text}' is not {_kind(default)}, like the parameter's default {declared[name]!r}",
                           "write a value of the same kind (sizes like 128 MiB count as integers)")
            continue
        params[name] = value
    return params


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    return "a string"


def typed_param(raw: Any) -> Any:
    """``raw``, a size written with a unit as its integer; raises ExprError for a size beyond 128 bits."""
    if isinstance(raw, str):
        size = parse_size(raw)
        if size is not None:
            return size
    return raw
