"""Fuzzing `machinedesc validate` (issue 8): arbitrary bytes, YAML token soup, board-shaped
structures and --set values must give exit 0 or 2, no traceback, no raw control character,
within a time bound; a few hostile inputs run in a subprocess under a memory limit.

The runs are reproducible and bounded for CI: hypothesis is derandomized (the same examples
every run), each test has a fixed number of examples and every example a deadline.
"""

from __future__ import annotations

import io
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from machinedesc.cli import main

FUZZ = settings(derandomize=True, deadline=timedelta(seconds=10), database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
HEADER = "machinedesc: 1\nsystem: riscv64\n"
#: A raw control character in output (tab and newline are layout).
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


@contextmanager
def workspace() -> Iterator[Path]:
    """A directory with a few files to include, as the working directory, with a private plan cache."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "frag.yaml").write_text("machinedesc: 1\ncomponents:\n  f: {type: pl011, mmio: 0x9000000}\n",
                                        encoding="utf-8")
        (root / "self.yaml").write_text("machinedesc: 1\ninclude: self.yaml\n", encoding="utf-8")
        (root / "dir.yaml").mkdir()
        old = Path.cwd()
        os.chdir(root)
        try:
            with mock.patch.dict(os.environ, {"MACHINEDESC_CACHE": str(root / ".cache")}):
                yield root
        finally:
            os.chdir(old)


def validate(board: bytes, *args: str) -> tuple[int, str, str]:
    """``machinedesc validate ARGS board.yaml`` in-process, in a fresh workspace."""
    with workspace() as root:
        (root / "board.yaml").write_bytes(board)
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err), pytest.raises(SystemExit) as exc:
            main(["validate", *args, "board.yaml"])
    code = exc.value.code if isinstance(exc.value.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def check(code: int, out: str, err: str) -> None:
    """What every run must give: ok, or a clean report of located errors."""
    assert "Traceback" not in err, err
    assert code in (0, 2), err
    if code == 0:
        assert (out, err) == ("board.yaml: ok\n", "")
        return
    assert out == ""
    assert err and not RAW_CONTROL.search(err), err
    for line in err.splitlines():
        assert line.startswith(("board.yaml", "frag.yaml", "self.yaml", "dir.yaml", "  hint: ", "  included from ",
                                "--set ", "... and ", "Error: ", "Usage: ", "Try ")), line


# ---------------------------------------------------------------- bytes


@settings(FUZZ, max_examples=300)
@given(st.binary(max_size=600), st.booleans())
def test_arbitrary_bytes(data: bytes, header: bool) -> None:
    check(*validate((HEADER.encode() if header else b"") + data))


# ---------------------------------------------------------------- YAML token soup

TOKENS = ["machinedesc: 1\n", "system: riscv64\n", "components:\n", "  ", "    ", "- ", ": ", "? ", ", ", "{", "}",
          "[", "]", "&a ", "*a", "&b ", "*b", "! ", "!!str ", "!!int ", "!x ", "'", '"', "\\", "#", "\n", "\t",
          "---\n", "...\n", "%YAML 1.2\n", "|\n", ">-\n", "${", "${i}", "${harts}", "0x", "0o", "9" * 50, "-",
          "1", "~", "null", "true", "uart0", "type: pl011", "count: ", "mmio: ", "props:", "include: frag.yaml",
          "extends: self.yaml", "include: dir.yaml", "include: ../x.yaml", "params: {harts: 2}", "\x00", "\x1b",
          "\x0b", "\x1c", "\x85", "\u2028", "\ufeff", "é", "\r", "<<: *a", "1 MiB", "hart${i}: {type: x, count: 3}"]


@settings(FUZZ, max_examples=300)
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_yaml_token_soup(tokens: list[str]) -> None:
    check(*validate("".join(tokens).encode("utf-8")))


# ---------------------------------------------------------------- board-shaped structures

TYPES = ["pl011", "serial-mm", "sysbus-memory", "cpu-cluster", "rv64-riscv-cpu", "riscv.aclint.mtimer", "vendor-dev",
         "or-irq", ""]
IDS = ["uart0", "ram", "cluster0", "hart${i}", "dev${i // 2}", "x", "9bad", "a b", "uart\x1b0"]
STRINGS = ["${i}", "${harts}", "${1 >> -1}", "${x * x * x}", "hart${i}", "${i == 0}", "${-(1 << 63)}", "64 KiB",
           "${", "}", "${1 // 0}", "${i << 200}", "uart0.sysbus-irq[0]", "hart0.unnamed-gpio-in[7]", "cluster0",
           "serial0", "/machine", "ram/mem[0]", "${" + "+".join(["1"] * 600) + "}", "9" * 60 + " TiB", "a\x07b"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(1 << 70), max_value=1 << 70),
                    st.sampled_from(STRINGS), st.text(max_size=12), st.floats())
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
COMPONENT = st.fixed_dictionaries({"type": st.sampled_from(TYPES)}, optional={
    "props": st.dictionaries(st.sampled_from(["size", "chardev", "regshift", "num-harts", "mhartid", "p"]), SCALARS,
                             max_size=3),
    "count": st.one_of(st.integers(-2, 6), st.sampled_from(["${harts}", "${x}", "${1 << 40}"])),
    "mmio": st.one_of(SCALARS, st.lists(st.fixed_dictionaries({"addr": SCALARS}, optional={
        "region": st.integers(-1, 3), "priority": st.integers(-1, 2), "size": SCALARS}), max_size=2)),
    "parent": st.sampled_from(IDS),
    "links": st.dictionaries(st.sampled_from(["memory", "l"]), st.sampled_from(IDS + STRINGS), max_size=2),
    "phase": st.sampled_from(["initialized", "ready", "x"]),
    "extra": VALUES,
})
LINES = st.one_of(st.sampled_from(STRINGS), st.lists(st.sampled_from(STRINGS), max_size=3))
WIRE = st.fixed_dictionaries({"from": LINES, "to": LINES},
                             optional={"count": st.integers(-1, 4), "join": st.sampled_from(["or", "and"])})
BOARD = st.fixed_dictionaries(
    {"machinedesc": st.sampled_from([1, 1, 1, "1", 2, None]), "system": st.sampled_from(["riscv64", "aarch64", "X"])},
    optional={
        "params": st.dictionaries(st.sampled_from(["harts", "x", "ram_size", "9"]), SCALARS, max_size=3),
        "components": st.dictionaries(st.sampled_from(IDS), COMPONENT, max_size=5),
        "wiring": st.dictionaries(st.sampled_from(["w", "irq${i}"]), WIRE, max_size=3),
        "chardevs": st.dictionaries(st.sampled_from(["serial0", "c"]), SCALARS, max_size=2),
        "include": st.lists(st.sampled_from(["frag.yaml", "self.yaml", "dir.yaml", "missing.yaml", "../out.yaml",
                                             "/etc/passwd", ""]), max_size=3),
        "machine": st.one_of(st.sampled_from(["none", "virt"]), VALUES),
        "name": SCALARS, "summary": SCALARS, "other": VALUES,
    })


@settings(FUZZ, max_examples=250)
@given(BOARD)
def test_board_structures(board: dict[str, Any]) -> None:
    # JSON is YAML 1.2; its \u escapes put real control characters into the values.
    check(*validate(json.dumps(board).encode("utf-8")))


@settings(FUZZ, max_examples=100)
@given(st.text(max_size=40) | st.sampled_from(STRINGS + ["9" * 5000, "0x" + "f" * 300, "", "2", "true"]))
def test_set_values(value: str) -> None:
    board = (HEADER + "params: {harts: 2}\ncomponents:\n  hart${i}: {type: rv64-riscv-cpu, count: ${harts}}\n")
    check(*validate(board.encode(), "--set", f"harts={value}"))


# ---------------------------------------------------------------- a few subprocess runs, memory-bounded

HOSTILE = {
    "deep-flow": b"machinedesc: 1\nsystem: riscv64\nx: " + b"[" * 100_000,
    "nul-soup": HEADER.encode() + bytes(range(256)) * 64,
    "anchors": HEADER.encode() + b"a: &a [" + b"x, " * 5000 + b"]\n" + b"".join(b"b%d: *a\n" % i for i in range(100)),
    "long-line": HEADER.encode() + b"name: " + b"\xc3\xa9" * 1_000_000 + b"\n",
    "copies": (HEADER + "components:\n  dev${i // 100000}:\n    count: 50000\n    type: vendor-dev\n").encode(),
}
MEMORY_LIMIT = 2 << 30


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_input_in_a_subprocess(case: str, tmp_path: Path) -> None:
    (tmp_path / "board.yaml").write_bytes(HOSTILE[case])
    result = subprocess.run([sys.executable, "-m", "machinedesc.cli", "validate", "board.yaml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120, preexec_fn=_limit_memory, check=False,
                            env={**os.environ, "MACHINEDESC_CACHE": str(tmp_path / "cache")})
    check(result.returncode, result.stdout, result.stderr)
    assert len(result.stderr) < 10_000
