"""YAML 1.2 core-schema scalars: a plain (unquoted) scalar's text -> None, a boolean, an integer, a float or text.

Integers are refused where they are written when beyond MAX_INT_BITS bits
(``LiteralError``), before Python converts their digits.
"""

from __future__ import annotations

import re
from typing import Any

#: Integer literals beyond this many bits are refused where they are written
#: (values beyond 64 bits are refused where they are used, with their path).
MAX_INT_BITS = 128


# YAML 1.2 core schema, for plain scalars.
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT10 = re.compile(r"^[-+]?[0-9]+$")
_INT16 = re.compile(r"^0x[0-9a-fA-F]+$")
_INT8 = re.compile(r"^0o[0-7]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_NAN = re.compile(r"^\.(?:nan|NaN|NAN)$")


_WORDS: dict[str, Any] = {"~": None, "null": None, "Null": None, "NULL": None, "": None, **_BOOL}
_NUMBER_START = frozenset("0123456789+-.")


class LiteralError(ValueError):
    """A plain scalar that is an integer too large to hold (the message says so)."""


def resolve_plain(text: str) -> Any:
    """The value of a plain (unquoted) scalar under the YAML 1.2 core schema.

    Raises:
        LiteralError: an integer beyond MAX_INT_BITS bits.
    """
    if text in _WORDS:
        return _WORDS[text]
    if text[0] not in _NUMBER_START:
        return text
    if _INT10.match(text):
        return _literal(text, text.lstrip("+-"), 10)
    if _INT16.match(text):
        return _literal(text, text[2:], 16)
    if _INT8.match(text):
        return _literal(text, text[2:], 8)
    if _FLOAT.match(text):
        return float(text)
    if _INF.match(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if _NAN.match(text):
        return float("nan")
    return text


#: Digits of the largest MAX_INT_BITS-bit literal, per base (decimal: 2**128 has 39).
_MAX_DIGITS = {10: 39, 16: MAX_INT_BITS // 4, 8: (MAX_INT_BITS + 2) // 3}


def _literal(text: str, digits: str, base: int) -> int:
    # Python refuses to convert more than 4,300 decimal digits, and a huge
    # value would make every message that shows it huge: stop at the digits.
    significant = digits.lstrip("0")
    value = int(significant or "0", base) if len(significant) <= _MAX_DIGITS[base] else None
    if value is None or value.bit_length() > MAX_INT_BITS:
        shown = text if len(text) <= 40 else f"{text[:24]}…{text[-8:]}"
        raise LiteralError(f"{shown} ({len(significant):,} digits) does not fit in 64 bits")
    return -value if text.startswith("-") else value
