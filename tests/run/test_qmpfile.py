"""Unit tests for the QMP configuration file parser (machinedesc.plan.qmpfile)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from qemu.qmp.qmp_shell import QMPShell

from machinedesc.errors import QmpFileError
from machinedesc.plan.qmpfile import (
    format_command,
    format_value,
    parse,
    parse_line,
    parse_value,
)
from machinedesc.qemu.phases import Phase
from machinedesc.source import SourceLocation

LOC = SourceLocation("f.qmp", 7, 1)


def args_of(line: str) -> dict[str, Any]:
    cmd = parse_line(line, LOC)
    assert cmd is not None
    return dict(cmd.arguments)


class _ShellParser:
    """qmp-shell's parsing methods without its connection (QMPShell needs a socket)."""

    _transmode = False
    _actions: list[Any] = []
    _build_cmd = QMPShell._build_cmd
    _cli_expr = QMPShell._cli_expr
    _parse_value = QMPShell._parse_value


def qmp_shell_parse(line: str) -> dict[str, Any]:
    """What qemu.qmp's own qmp-shell builds from a line (its private parser, no connection)."""
    msg = _ShellParser()._build_cmd(line)
    assert msg is not None
    return dict(msg)


@pytest.mark.parametrize("text, value", [
    ("0", 0), ("-12", -12), ("2147483648", 2147483648), ("true", True), ("FALSE", False),
    ("abc", "abc"), ("/machine/peripheral/uart0", "/machine/peripheral/uart0"),
    ("0x10", "0x10"),  # no hex: qmp-shell sends it as a string, so do we
    ("1.5", "1.5"), ("null", "null"),
    ('{"a":1,"b":[true,"x y"]}', {"a": 1, "b": [True, "x y"]}),
    ("[1,2]", [1, 2]), ('"0"', "0"), ('"with space"', "with space"), ('"true"', "true"),
])
def test_values(text: str, value: Any) -> None:
    got = parse_value(text)
    assert got == value and type(got) is type(value)


def test_command_line_with_json_and_strings() -> None:
    cmd = parse_line('device_add driver=loader id=fw file="/a b/fw.elf" cpu-num=0 '
                     'list=[1,{"k":"v w"}] realized=false', LOC)
    assert cmd is not None
    assert cmd.command == "device_add"
    assert cmd.arguments == {"driver": "loader", "id": "fw", "file": "/a b/fw.elf", "cpu-num": 0,
                             "list": [1, {"k": "v w"}], "realized": False}
    assert cmd.message == {"execute": "device_add", "arguments": dict(cmd.arguments)}


def test_no_arguments_gives_bare_message() -> None:
    cmd = parse_line("   x-exit-preconfig  ", LOC)
    assert cmd is not None and cmd.message == {"execute": "x-exit-preconfig"}
    assert cmd.location.col == 4


def test_dotted_key_nests_only_that_key() -> None:
    assert args_of("cmd a.b=1 c=2") == {"a": {"b": 1}, "c": 2}
    assert args_of("cmd a.b=1 a.c.d=x e=3") == {"a": {"b": 1, "c": {"d": "x"}}, "e": 3}
    # qmp-shell nests every later argument after a dotted key; we document the difference.
    assert qmp_shell_parse("cmd a.b=1 c=2")["arguments"] == {"a": {"b": 1, "c": 2}}


@pytest.mark.parametrize("line, col, fragment", [
    ("cmd a=1 a=2", 9, "'a' is given twice"),
    ("cmd a.b=1 a=2", 11, "used both as a value and as an object"),
    ("cmd a=1 a.b=2", 9, "used both as a value and as an object"),
    ("cmd novalue", 5, "expected key=value, got 'novalue'"),
    ("cmd x=1 # trailing", 9, "expected key=value, got '#'"),
    ("cmd =1", 5, "invalid argument name ''"),
    ("cmd a..b=1", 5, "invalid argument name 'a..b'"),
    ("cmd v={not json}", 8, "invalid JSON value"),  # at the character JSON refuses
    ('cmd v="unterminated\\"', 7, "unterminated quote"),
    ('cmd v="' + "\\" * 40, 7, "unterminated quote"),  # once backtracked for ever
    ("cmd v=[NaN]", 7, "NaN is not a JSON number"),
    ("cmd v=" + "[" * 65 + "]" * 65, 7, "nested deeper than 64 levels"),
    ("a=1 b=2", 1, "expected a command name"),
    ("transaction( x=1", 1, "transaction blocks are not supported"),
])
def test_line_errors_name_line_and_column(line: str, col: int, fragment: str) -> None:
    with pytest.raises(QmpFileError) as err:
        parse_line(line, LOC)
    assert err.value.location == SourceLocation("f.qmp", 7, col)
    assert fragment in str(err.value)
    assert str(err.value).startswith(f"f.qmp:7:{col}: ")
    assert err.value.exit_code == 2


FILE = """\
# machinedesc plan: boards/soc.yaml
# system: riscv64
# qemu: qemu-system-riscv64 -M none -smp 1,maxcpus=2 -nodefaults -display none -chardev stdio,id=serial0 -preconfig

# phase: accel-created
x-machine-init

# phase: initialized
# boards/soc.yaml:10 cluster0: create
device_add driver=cpu-cluster id=cluster0 cluster-id=0 realized=false
   # indented comment
qom-set path=cluster0 property=realized value=true
# late: comment with a colon is not a header after the first command
x-exit-preconfig
# phase: ready
"""


def test_whole_file() -> None:
    f = parse(FILE, "soc.qmp")
    # "# machinedesc plan: ..." is not a header (its key has a blank): only key: value.
    assert f.header == {
        "system": "riscv64",
        "qemu": "qemu-system-riscv64 -M none -smp 1,maxcpus=2 -nodefaults -display none "
                "-chardev stdio,id=serial0 -preconfig",
    }
    assert f.system == "riscv64"
    assert f.qemu_argv is not None and f.qemu_argv[:3] == ["qemu-system-riscv64", "-M", "none"]
    assert [(c.location.line, c.command, c.phase) for c in f.commands] == [
        (6, "x-machine-init", Phase.ACCEL_CREATED),
        (10, "device_add", Phase.INITIALIZED),
        (12, "qom-set", Phase.INITIALIZED),
        (14, "x-exit-preconfig", Phase.INITIALIZED),
    ]
    assert "late" not in f.header


def test_system_from_binary_name_and_quoted_header() -> None:
    f = parse("# qemu: /opt/q/bin/qemu-system-aarch64 -M none -name 'a b'\nquit\n", "x.qmp")
    assert f.system == "aarch64"
    assert f.qemu_argv == ["/opt/q/bin/qemu-system-aarch64", "-M", "none", "-name", "a b"]
    assert parse("quit\n", "y.qmp").qemu_argv is None


def test_unknown_phase_is_an_error_with_its_line() -> None:
    with pytest.raises(QmpFileError) as err:
        parse("quit\n\n  # phase: initialised\n", "p.qmp")
    assert str(err.value).startswith("p.qmp:3:3: unknown phase 'initialised'")


def test_error_line_numbers_count_comments_and_blanks() -> None:
    with pytest.raises(QmpFileError) as err:
        parse("# a\n\n# b\nquit\nqom-set path=x property\n", "e.qmp")
    assert str(err.value).startswith("e.qmp:5:16: expected key=value, got 'property'")


# Lines without dotted keys or quoted strings: qmp-shell and we must agree exactly.
_plain_value = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.booleans(),
    st.from_regex(r"[A-Za-z/_][A-Za-z0-9/_\-\[\]:,.]{0,20}", fullmatch=True).filter(
        lambda s: s.lower() not in ("true", "false")),
    st.lists(st.integers(min_value=0, max_value=9), max_size=3),
    st.dictionaries(st.from_regex(r"[a-z]{1,5}", fullmatch=True),
                    st.one_of(st.integers(), st.booleans(), st.text(max_size=5)), max_size=3),
)
_key = st.from_regex(r"[a-z][a-z0-9_\-]{0,10}", fullmatch=True)


@given(st.from_regex(r"[a-z][a-z0-9_\-]{0,15}", fullmatch=True), st.dictionaries(_key, _plain_value, max_size=6))
def test_format_parse_round_trip_and_agrees_with_qmp_shell(command: str, arguments: dict[str, Any]) -> None:
    line = format_command(command, arguments)
    cmd = parse_line(line, LOC)
    assert cmd is not None
    assert cmd.command == command
    assert dict(cmd.arguments) == arguments
    assert qmp_shell_parse(line) == {"execute": command, "arguments": arguments}


@given(st.text(max_size=30))
def test_any_string_round_trips(text: str) -> None:
    assert parse_value(format_value(text)) == text


def test_format_refuses_values_without_a_literal() -> None:
    with pytest.raises(ValueError):
        format_value(1.5)
    with pytest.raises(ValueError):
        format_value(None)


def test_files_run_reads_are_bounded_regular_files(tmp_path: Path) -> None:
    """A FIFO blocked run for ever; a 20 MB line took 2.5 GB: both refused before parsing."""
    import os

    from machinedesc.errors import QmpFileError
    from machinedesc.plan.qmpfile import MAX_LINE_CHARS, load

    fifo = tmp_path / "f.qmp"
    os.mkfifo(fifo)
    with pytest.raises(QmpFileError, match=r"f\.qmp: is a FIFO \(named pipe\), not a regular file"):
        load(fifo)
    long = tmp_path / "long.qmp"
    long.write_text("qom-get path=/machine property=" + "a" * MAX_LINE_CHARS + "\n")
    with pytest.raises(QmpFileError, match=r"long\.qmp:1:1: a line of 1,048,607 characters"):
        load(long)


def test_strings_that_are_not_printable_are_written_escaped() -> None:
    """Control and bidi characters from a board never reach a plan file (or a terminal) raw."""
    from machinedesc.plan.qmpfile import format_value, parse_value

    for text in ("a\x1b]0;PWN\x07b", "a\u202eb", "a\x00b", "tab\there"):
        written = format_value(text)
        assert written.isprintable() and written.isascii(), written
        assert parse_value(written) == text
