"""Fuzzing QMP configuration files: arbitrary bytes and structures never escape as a traceback.

Hypothesis runs derandomized (the same examples on every run, so CI is
reproducible) with a fixed number of examples; each example has a deadline, so
a parser that backtracks or recurses without bound fails here.
"""

from __future__ import annotations

import json
import string
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from machinedesc.errors import QmpFileError
from machinedesc.plan.qmpfile import format_command, load, parse

ROOT = Path(__file__).resolve().parents[2]
FUZZ = settings(max_examples=300, derandomize=True, deadline=2000,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

#: Characters the tokenizer and the value reader treat specially, often.
_SPECIAL = "\"'\\{}[]=.#:, \t\x00\x1b\x0b\x1c"
_text = st.text(alphabet=st.sampled_from(_SPECIAL) | st.characters(codec="utf-8"), max_size=400)

_json_leaf = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.text(max_size=20)
_json = st.recursive(_json_leaf, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(string.ascii_letters, min_size=1, max_size=6), inner, max_size=4),
                     max_leaves=30)


@FUZZ
@given(st.binary(max_size=2000))
def test_bytes_parse_or_fail_cleanly(tmp_path_factory: Any, data: bytes) -> None:
    path = tmp_path_factory.mktemp("fuzz") / "f.qmp"
    path.write_bytes(data)
    try:
        load(path)
    except QmpFileError as exc:
        assert str(exc).startswith(f"{path}:")


@FUZZ
@given(st.lists(_text, max_size=12))
def test_lines_parse_or_fail_at_a_position(lines: list[str]) -> None:
    text = "\n".join(lines)
    try:
        parsed = parse(text, "f.qmp")
    except QmpFileError as exc:
        line = exc.location.line
        assert 1 <= line <= max(1, text.count("\n") + 1)
        return
    assert all(c.command for c in parsed.commands)


@FUZZ
@given(st.dictionaries(st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True), _json, max_size=5))
def test_written_commands_read_back(arguments: dict[str, Any]) -> None:
    """Whatever format_command writes, parse reads back to the same arguments (or it refuses to write)."""
    try:
        line = format_command("cmd", arguments)
    except ValueError:
        return  # None has no literal: refused at write time, never written wrongly
    parsed = parse(line + "\n", "f.qmp").commands[0]
    assert json.dumps(dict(parsed.arguments), sort_keys=True) == json.dumps(arguments, sort_keys=True)


@settings(max_examples=15, derandomize=True, deadline=None)
@given(st.binary(max_size=300) | _text.map(lambda t: t.encode("utf-8", "replace")))
def test_run_exits_cleanly(tmp_path_factory: Any, data: bytes) -> None:
    """The real command: exit 2 (bad file) or 5 (/bin/false is no QEMU), never a traceback, never a hang."""
    path = tmp_path_factory.mktemp("fuzz") / "f.qmp"
    path.write_bytes(data)
    out = subprocess.run([sys.executable, "-m", "machinedesc.cli", "run", "--qemu", "/bin/false", str(path)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert "Traceback" not in out.stderr
    assert out.returncode in (2, 5), (out.returncode, out.stderr[-500:])
