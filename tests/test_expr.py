"""Expressions and sizes."""

from __future__ import annotations

import pytest

from machinedesc.board.expr import ExprError, parse_size, substitute


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
    ("${'a' * 3}", "arithmetic needs integers"),  # string literals exist since the builders
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


@pytest.mark.parametrize("text,needle", [
    ("${1 >> -1}", "shift count -1 out of range"),
    ("${1 << -1}", "shift count -1 out of range"),
    ("${1 >> 129}", "shift count 129 out of range"),
    ("${" + "+".join(["1"] * 3000) + "}", "at most 1,000 characters"),
    ("${" + "-" * 10_000 + "1}", "at most 1,000 characters"),
    ("${" + "-" * 200 + "1}", "nested more than 100 levels"),
    ("${" + "(" * 250 + "1" + ")" * 250 + "}", "cannot parse"),  # CPython: too many nested parentheses
    ("${(1 << 100) * (1 << 100)}", "does not fit in 128 bits"),
    ("${-(1 << 127) * 2 - 1}", "does not fit in 128 bits"),
    ("${0x" + "f" * 40 + "}", "a literal does not fit in 64 bits"),
    ("${1 % 0}", "division by zero"),
    ("${1\x00}", "cannot parse"),
])
def test_expression_limits_and_domains(text: str, needle: str) -> None:
    with pytest.raises(ExprError) as err:
        substitute(text, {})
    assert needle in err.value.message


@pytest.mark.parametrize("text,want", [
    ("${(1 << 64) - 1}", (1 << 64) - 1),   # 128 bits in between leave room for this
    ("${-(1 << 127)}", -(1 << 127)),
    ("${1 >> 128}", 0),
    ("${-1 >> 5}", -1),
    ("${" + "-" * 98 + "1}", 1),
    ("${" + " + ".join(["1"] * 99) + "}", 99),
])
def test_expressions_at_the_limits(text: str, want: int) -> None:
    assert substitute(text, {}) == want


def test_huge_sizes_are_refused_without_converting() -> None:
    with pytest.raises(ExprError, match=r"\(5,000 digits\) does not fit in 64 bits"):
        parse_size("9" * 5000 + " TiB")
    assert parse_size("0" * 5000 + "1 KiB") == 1024


def test_expanded_strings_are_bounded() -> None:
    """'${s}${s}' over 1,000 copies of a 500 KB parameter took 56 s and 3.95 GB; now refused at the bound."""
    from machinedesc.board.expr import MAX_EXPANDED_CHARS, ExprError, substitute

    half = "x" * (MAX_EXPANDED_CHARS // 2)
    assert substitute("${s}${s}", {"s": half}) == half * 2  # exactly at the bound: fine
    with pytest.raises(ExprError, match="expands to more than 65,536 characters"):
        substitute("${s}${s}!", {"s": half})
    with pytest.raises(ExprError, match="expands to more than"):
        substitute("${s}", {"s": half * 3})
    with pytest.raises(ExprError, match="expands to more than"):
        substitute("a${s}" * 1000, {"s": "y" * 500_000})


# ---- string and list builders ----------------------------------------------------


@pytest.mark.parametrize("text,env,want", [
    ('${repeat("MS", harts, ",")}', {"harts": 4}, "MS,MS,MS,MS"),
    ("${repeat('MS', 1, ',')}", {}, "MS"),
    ("${repeat('ab', 3)}", {}, "ababab"),
    ("${repeat('MS', 0, ',')}", {}, ""),
    ("${join(',', range(3))}", {}, "0,1,2"),
    ("${join('-', range(2, 5))}", {}, "2-3-4"),
    ("${range(harts)}", {"harts": 3}, [0, 1, 2]),
    ("${range(0)}", {}, []),
    ("cpu-${str(i * 2)}", {"i": 3}, "cpu-6"),
    ("${'a' + name}", {"name": "bc"}, "abc"),
    ("${cpu}", {"cpu": "cortex-a57-arm-cpu"}, "cortex-a57-arm-cpu"),
])
def test_builders(text: str, env: dict[str, object], want: object) -> None:
    assert substitute(text, env) == want


@pytest.mark.parametrize("text,needle", [
    ("${repeat('MS', -1)}", "negative"),
    ("${repeat(1, 2)}", "takes strings"),
    ("${repeat('x')}", "takes 2 or 3 arguments, got 1"),
    ("${repeat('x', 70000)}", "longer than 65,536 characters"),
    ("${repeat('x', 1 << 100)}", "longer than 65,536 characters"),
    ("${join(',', 3)}", "takes a string and a list"),
    ("${range(200000)}", "more than 100,000 items"),
    ("x${range(3)}", "a list cannot be pasted into text"),
    ("${str(range(2))}", "str() of a list"),
    ("${range(2) + 1}", "arithmetic needs integers"),
    ("${open('x')}", "open(...) is not allowed"),
    ("${repeat(sep='x')}", "repeat(...) is not allowed"),
    ("${'ab' * 3}", "arithmetic needs integers"),
])
def test_builder_errors(text: str, needle: str) -> None:
    with pytest.raises(ExprError) as err:
        substitute(text, {})
    assert needle in err.value.message
