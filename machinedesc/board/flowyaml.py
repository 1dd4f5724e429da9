"""Board YAML in flow style, as the importers write it (import-qmp, import-dtb): one line per entry.

Values are written so that the board reader (board/yaml_reader.py, YAML
1.2) reads back exactly the value given: strings plain only when no YAML
rule could read them as something else, integers in hex from 0x1000 (sizes
and addresses read better so), ``${...}`` texts always quoted.
"""

from __future__ import annotations

import json
import re
from typing import Any

_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")
_YAML_WORDS = ("true", "false", "null", "yes", "no", "on", "off", "y", "n")


def scalar(text: str) -> str:
    """A string as YAML reads it back as that string: plain when safe, else double-quoted."""
    if _PLAIN.match(text) and text.lower() not in _YAML_WORDS and "${" not in text:
        return text
    return json.dumps(text)


def value(v: Any) -> str:
    """A property value: booleans, integers (hex from 0x1000), lists, mappings (JSON), strings."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v:#x}" if v >= 0x1000 else str(v)
    if isinstance(v, list):
        return "[" + ", ".join(value(x) for x in v) + "]"
    if isinstance(v, dict):
        return json.dumps(v)
    return scalar(str(v))


def addr(a: int | str) -> str:
    """An address: hex for an integer, else the (``${...}``) text quoted."""
    return f"{a:#x}" if isinstance(a, int) else scalar(str(a))


def unique_name(name: str, used: set[str], last: dict[str, int] | None = None) -> str:
    """``name``, else the first of ``name-2``, ``name-3``, ... not in ``used``; added to ``used``.

    ``last`` remembers the number each name was given last: ``used`` only
    grows, so the numbers below it are taken and are not tried again (N
    entries of one name cost O(N), not O(N**2): 50,000 wires of one pair of
    stems took 40 s).
    """
    if name not in used:
        used.add(name)
        return name
    n = last.get(name, 1) if last is not None else 1
    while f"{name}-{n}" in used or n < 2:
        n += 1
    if last is not None:
        last[name] = n
    used.add(f"{name}-{n}")
    return f"{name}-{n}"
