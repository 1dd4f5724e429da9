"""Expressions and sizes."""

from __future__ import annotations

import pytest

from machinedesc.expr import ExprError, parse_size, substitute


@pytest.mark.parametrize("text,env,want", [
    ("${harts}", {"harts": 4}, 4),
    ("${0x10000000 + i * 0x1000}", {"i": 2}, 0x10002000),
    ("hart${i}", {"i": 3}, "hart3"),
    ("${i == 0}", {"i": 0}, True),
    ("${(1 << 12) | 3}", {}, 4099),
    ("${-i}", {"i": 5}, -5),
    ("plain", {}, "plain"),
    (7, {}, 7),
])
def test_substitute(text: object, env: dict[str, int], want: object) -> None:
    assert substitute(text, env) == want


@pytest.mark.parametrize("text,needle", [
    ("${nope}", "'nope' is not defined"),
    ("${1 +}", "cannot parse"),
    ("${1 // 0}", "division by zero"),
    ("${__import__('os')}", "only integers"),
    ("${'a' * 3}", "only integer literals"),
    ("${1 << 1000}", "shift count"),
])
def test_bad_expressions(text: str, needle: str) -> None:
    with pytest.raises(ExprError) as err:
        substitute(text, {})
    assert needle in err.value.message


def test_did_you_mean() -> None:
    with pytest.raises(ExprError) as err:
        substitute("${hart}", {"harts": 2})
    assert err.value.hint == "did you mean 'harts'?"


@pytest.mark.parametrize("text,want", [("128 MiB", 128 << 20), ("4KiB", 4096), ("1 GiB", 1 << 30),
                                       ("7 B", 7), ("12 MB", None), ("big", None)])
def test_sizes(text: str, want: int | None) -> None:
    assert parse_size(text) == want
