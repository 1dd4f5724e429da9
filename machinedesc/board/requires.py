"""``requires:``: conditions a board or a fragment states on its parameters (docs/format.md, "Requirements").

A fragment's parameters are bound at each ``use:``, a board's by its
``params:`` and ``--set``; a condition that does not hold there is one error
with the author's message, instead of the follow-on errors of components
built from parameters out of range (a PLIC fragment with ``contexts: 3``
wiring harts that do not exist).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: The path of a value in the tree, for the evaluator's error locations.
PathT = tuple[str | int, ...]


@dataclass(frozen=True)
class Failed:
    """One requirement that does not hold: its index in ``requires``, its check text and message.

    ``written_wrong``: the check is not a comparison (the author's mistake, to
    report at the requirement itself, not at a use).
    """

    index: int
    check: str
    message: str
    written_wrong: bool = False


def failed_requirements(tree: Mapping[str, Any], evaluate: Callable[[Any, PathT], Any]) -> list[Failed]:
    """The requirements of ``tree`` (a board's or a fragment's) whose ``check`` is not true.

    ``evaluate(raw, path)`` substitutes one value (and reports its own
    expression errors, returning None: such a check is not reported again).
    A check that evaluates to something other than a boolean is a failure
    whose message says so.
    """
    out: list[Failed] = []
    for k, req in enumerate(tree.get("requires", ())):
        check, message = str(req["check"]), str(req["message"])
        value = evaluate(req["check"], ("requires", k, "check"))
        if value is None or value is True:
            continue
        if value is False:
            out.append(Failed(k, check, message))
        else:
            out.append(Failed(k, check, f"{check} gives {value!r}, not true or false", written_wrong=True))
    return out
