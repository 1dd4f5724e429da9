"""${...} expressions: integer arithmetic over parameters and the copy index, and a few string and list builders.

The builders (docs/format.md, "Values"): ``repeat(text, n[, sep])``,
``join(sep, list)``, ``range(n)`` / ``range(start, stop)`` and ``str(x)``;
string literals are quoted ('MS' or "MS"), ``+`` also joins two strings.
Every string result is bounded by MAX_EXPANDED_CHARS, every list by MAX_LIST.
"""

from __future__ import annotations

import ast
import functools
import operator
import re
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import Hints
from .yaml_scalars import MAX_INT_BITS

EXPR = re.compile(r"\$\{([^{}]*)\}")
#: Characters of one expression; real ones are a few dozen.
MAX_EXPR_CHARS = 1_000
#: Nesting of one expression (operators inside operators); ``a + b + c`` is 3 deep.
MAX_EXPR_DEPTH = 100
#: Characters a string may expand to (each copy of a count: holds its own).
MAX_EXPANDED_CHARS = 64 << 10
#: Items a list built by range() may have (a list pasted into QMP or a board's count).
MAX_LIST = 100_000
#: Shift counts allowed, for << and >> alike.
MAX_SHIFT = 128
SIZE = re.compile(r"^([0-9]+) ?(B|KiB|MiB|GiB|TiB)$")
_UNITS = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}

_BINOPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.LShift: operator.lshift,
    ast.RShift: operator.rshift, ast.BitOr: operator.or_, ast.BitAnd: operator.and_,
    ast.BitXor: operator.xor,
}
_CMPOPS: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
}
_UNOPS: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.USub: operator.neg, ast.UAdd: operator.pos, ast.Invert: operator.invert,
}


class ExprError(Exception):
    """An expression that cannot be evaluated; message and hint are for the user."""

    def __init__(self, message: str, hint: str | None = None, *, undefined: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        #: The name that is not defined, for a "did you mean" hint (``evaluate`` adds it).
        self.undefined = undefined


def parse_size(text: str) -> int | None:
    """``128 MiB`` -> 134217728; None if ``text`` is not a size.

    Raises:
        ExprError: a size beyond MAX_INT_BITS bits (its digits are not converted).
    """
    match = SIZE.match(text)
    if not match:
        return None
    digits = match.group(1).lstrip("0") or "0"
    value = int(digits) * _UNITS[match.group(2)] if len(digits) <= 39 else None
    if value is None or value.bit_length() > MAX_INT_BITS:
        shown = text if len(text) <= 40 else f"{text[:24]}…{text[-12:]}"
        raise ExprError(f"{shown} ({len(digits):,} digits) does not fit in 64 bits")
    return value


_ALLOWED = ("only integers, 'strings', names, + - * // % << >> & | ^ ~, comparisons and the functions "
            "repeat, join, range, str are allowed")


@functools.lru_cache(maxsize=4096)
def _compile(source: str) -> ast.expr:
    if len(source) > MAX_EXPR_CHARS:
        raise ExprError(f"'{source[:40]}…': an expression may have at most {MAX_EXPR_CHARS:,} characters, "
                        f"this one has {len(source):,}", "split it: define parts under params:")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as err:
        raise ExprError(f"cannot parse expression '{source}': {err.msg}") from None
    except (ValueError, RecursionError, MemoryError) as err:  # NUL bytes; nesting CPython's parser refuses
        raise ExprError(f"cannot parse expression '{source}': {type(err).__name__}") from None
    _check_depth(tree.body, source)
    for node in ast.walk(tree):
        if not isinstance(node, (ast.Expression, ast.BinOp, ast.UnaryOp, ast.Constant, ast.Name,
                                 ast.Load, ast.Compare, ast.Call, *_BINOPS, *_UNOPS, *_CMPOPS)):
            raise ExprError(f"'{source}': " + _ALLOWED)
        if isinstance(node, ast.Call):
            _check_call(node, source)
        if isinstance(node, ast.Constant) and (not isinstance(node.value, (int, str)) or isinstance(node.value, bool)):
            raise ExprError(f"'{source}': only integer and 'string' literals are allowed")
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and node.value.bit_length() > MAX_INT_BITS:
            raise ExprError(f"'{source}': a literal does not fit in 64 bits")
    return tree.body


def _check_call(node: ast.Call, source: str) -> None:
    """Refuse a call that is not one of _FUNCTIONS with plain positional arguments."""
    if not isinstance(node.func, ast.Name):
        raise ExprError(f"'{source}': " + _ALLOWED)
    name = node.func.id
    if name not in _FUNCTIONS or node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        raise ExprError(f"'{source}': {name}(...) is not allowed: " + _ALLOWED,
                        "the functions: " + ", ".join(f"{k}{v[2]}" for k, v in _FUNCTIONS.items()))


def _check_depth(root: ast.expr, source: str) -> None:
    """Refuse nesting deeper than MAX_EXPR_DEPTH (evaluation recurses once per level)."""
    todo: list[tuple[ast.AST, int]] = [(root, 1)]
    while todo:
        node, depth = todo.pop()
        if depth > MAX_EXPR_DEPTH:
            raise ExprError(f"'{source[:40]}…': nested more than {MAX_EXPR_DEPTH} levels deep",
                            "split it: define parts under params:")
        todo.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def evaluate(source: str, env: Mapping[str, Any], hints: Hints | None = None) -> Any:
    """The value of expression ``source`` with names from ``env``.

    ``hints`` is the load's hint budget (a fresh one if None), for the
    "did you mean" of a name that is not defined.
    """
    try:
        return _eval(_compile(source), env, source)
    except ExprError as err:
        if err.undefined is not None:
            err.hint = (hints or Hints()).did_you_mean(err.undefined, env) or err.hint
        raise


def _eval(node: ast.expr, env: Mapping[str, Any], source: str) -> Any:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        if node.id not in env:
            hint = "define it under params:" if node.id != "i" else "${i} exists only inside an entry with count"
            raise ExprError(f"'{node.id}' is not defined", hint, undefined=node.id)
        return env[node.id]
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)
        return _call(node.func.id, [_eval(a, env, source) for a in node.args], source)
    if isinstance(node, ast.UnaryOp):
        return _int(_UNOPS[type(node.op)](_int(_eval(node.operand, env, source), source)), source)
    if isinstance(node, ast.Compare):
        left = _int(_eval(node.left, env, source), source)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = _int(_eval(right_node, env, source), source)
            if not _CMPOPS[type(op)](left, right):
                return False
            left = right
        return True
    assert isinstance(node, ast.BinOp)
    left, right = _eval(node.left, env, source), _eval(node.right, env, source)
    if isinstance(node.op, ast.Add) and isinstance(left, str) and isinstance(right, str):
        return _text(left + right, source)
    left, right = _int(left, source), _int(right, source)
    if isinstance(node.op, (ast.FloorDiv, ast.Mod)) and right == 0:
        raise ExprError(f"'{source}': division by zero")
    if isinstance(node.op, (ast.LShift, ast.RShift)) and not 0 <= right <= MAX_SHIFT:
        raise ExprError(f"'{source}': shift count {right} out of range")
    return _int(_BINOPS[type(node.op)](left, right), source)


def _text(value: str, source: str) -> str:
    if len(value) > MAX_EXPANDED_CHARS:
        raise ExprError(f"'{source[:40]}': a string longer than {MAX_EXPANDED_CHARS:,} characters")
    return value


def _repeat(source: str, text: Any, count: Any, sep: Any = "") -> str:
    if not isinstance(text, str) or not isinstance(sep, str):
        raise ExprError(f"'{source}': repeat(text, n, sep) takes strings for text and sep")
    count = _int(count, source)
    if count < 0:
        raise ExprError(f"'{source}': repeat() count {count} is negative")
    if count * (len(text) + len(sep)) > MAX_EXPANDED_CHARS + len(sep):
        raise ExprError(f"'{source[:40]}': a string longer than {MAX_EXPANDED_CHARS:,} characters")
    return sep.join([text] * count)


def _join(source: str, sep: Any, items: Any) -> str:
    if not isinstance(sep, str) or not isinstance(items, list):
        raise ExprError(f"'{source}': join(sep, list) takes a string and a list, e.g. join(',', range(4))")
    return _text(sep.join(str(i) for i in items), source)


def _range(source: str, *args: Any) -> list[int]:
    bounds = [_int(a, source) for a in args]
    start, stop = (0, bounds[0]) if len(bounds) == 1 else (bounds[0], bounds[1])
    if stop - start > MAX_LIST:
        raise ExprError(f"'{source[:40]}': range() of more than {MAX_LIST:,} items")
    return list(range(start, stop))


def _str(source: str, value: Any) -> str:
    if isinstance(value, list):
        raise ExprError(f"'{source}': str() of a list; use join(sep, list)")
    return _text(str(value).lower() if isinstance(value, bool) else str(value), source)


#: name -> (function(source, *args), allowed argument counts, signature for messages)
_FUNCTIONS: dict[str, tuple[Callable[..., Any], tuple[int, ...], str]] = {
    "repeat": (_repeat, (2, 3), "(text, n[, sep])"),
    "join": (_join, (2,), "(sep, list)"),
    "range": (_range, (1, 2), "(n) or (start, stop)"),
    "str": (_str, (1,), "(value)"),
}


def _call(name: str, args: list[Any], source: str) -> Any:
    func, counts, signature = _FUNCTIONS[name]
    if len(args) not in counts:
        raise ExprError(f"'{source}': {name}{signature} takes {' or '.join(map(str, counts))} arguments, "
                        f"got {len(args)}")
    return func(source, *args)


def _int(value: Any, source: str) -> int:
    """``value`` if it is an integer within MAX_INT_BITS bits (operands, and every result)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ExprError(f"'{source}': arithmetic needs integers, got {value!r}")
    if value.bit_length() > MAX_INT_BITS:
        # Values must fit in 64 bits in the end; in between, 128 leave room for (1 << 64) - 1.
        raise ExprError(f"'{source}': a value in between does not fit in {MAX_INT_BITS} bits",
                        "every value must fit in 64 bits in the end")
    return value


def substitute(value: Any, env: Mapping[str, Any], hints: Hints | None = None) -> Any:
    """``value`` with ${...} evaluated: a whole-string expression keeps its type (``hints``: see evaluate).

    Raises:
        ExprError: an expression fails, or the text grows beyond MAX_EXPANDED_CHARS.
    """
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = EXPR.fullmatch(value)
    if whole:
        result = evaluate(whole.group(1), env, hints)
        if isinstance(result, str) and len(result) > MAX_EXPANDED_CHARS:
            raise _too_long(value)
        return result
    # Built piece by piece, so that '${s}${s}...' stops at the bound, not after it.
    pieces: list[str] = []
    size, end = 0, 0
    for match in EXPR.finditer(value):
        result = evaluate(match.group(1), env, hints)
        if isinstance(result, list):
            raise ExprError(f"'{value[:40]}': a list cannot be pasted into text",
                            "make the whole value the expression, or use join(sep, list)")
        piece = str(result)
        size += (match.start() - end) + len(piece)
        if size > MAX_EXPANDED_CHARS:
            raise _too_long(value)
        pieces += (value[end:match.start()], piece)
        end = match.end()
    if size + len(value) - end > MAX_EXPANDED_CHARS:
        raise _too_long(value)
    pieces.append(value[end:])
    return "".join(pieces)


def _too_long(value: str) -> ExprError:
    return ExprError(f"'{value[:40]}': expands to more than {MAX_EXPANDED_CHARS:,} characters",
                     "strings built from parameters are for names and short values; a count: of "
                     "copies multiplies each one")
