"""Hostile board input (issue 8): what the invalid corpus cannot hold (FIFOs, huge files, counts of
reads), the limits at their edges, and the message safety rules."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from machinedesc.board import includes, located, yaml_reader
from machinedesc.board.includes import load_document
from machinedesc.board.yaml_reader import parse_text
from machinedesc.cli import main
from machinedesc.errors import MAX_PER_KIND, BoardError, Problem, printable
from machinedesc.source import SourceLocation

ROOT = Path(__file__).resolve().parent.parent
HEADER = "machinedesc: 1\nsystem: riscv64\n"


def validate(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(["validate", *argv])
    out, err = capsys.readouterr()
    return (exc.value.code if isinstance(exc.value.code, int) else 1), out, err


def run_cli(args: list[str], cwd: Path, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """machinedesc in a subprocess: a regression that blocks fails the test instead of hanging it."""
    return subprocess.run([sys.executable, "-m", "machinedesc.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, check=False)


# ---------------------------------------------------------------- files that are not regular files


def test_fifo_board_and_include_are_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.yaml")
    (tmp_path / "top.yaml").write_text(HEADER + "include: [pipe.yaml]\n", encoding="utf-8")
    board = run_cli(["validate", "pipe.yaml"], tmp_path)
    assert (board.returncode, board.stdout) == (2, "")
    assert board.stderr == ("pipe.yaml: is a FIFO (named pipe), not a regular file\n"
                            "  hint: boards and the files they include must be regular files\n")
    include = run_cli(["validate", "top.yaml"], tmp_path)
    assert (include.returncode, include.stdout) == (2, "")
    assert include.stderr.startswith("top.yaml:3:11: include: 'pipe.yaml' is a FIFO (named pipe), not a regular file\n")


def test_dev_zero_as_board_is_refused(tmp_path: Path) -> None:
    result = run_cli(["plan", "/dev/zero"], tmp_path)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith("/dev/zero: is a character device, not a regular file\n")


def test_symlink_loop_as_board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.yaml").symlink_to("b.yaml")
    (tmp_path / "b.yaml").symlink_to("a.yaml")
    monkeypatch.chdir(tmp_path)
    code, out, err = validate(["a.yaml"], capsys)
    assert (code, out) == (2, "")
    assert err == ("a.yaml: cannot read: Too many levels of symbolic links\n"
                   "  hint: symbolic links that lead in a circle\n")


def test_a_file_over_the_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as f:  # sparse: no disk used
        f.write(HEADER.encode())
        f.truncate(yaml_reader.MAX_BOARD_BYTES + 1)
    with pytest.raises(BoardError) as err:
        load_document(big)
    assert str(err.value) == (f"{big}: is larger than 32 MiB, the most a board and its includes may hold\n"
                              "  hint: split the board, or replicate entries with count: instead of writing them out")


def test_a_file_that_grows_while_read_is_cut_at_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "x.yaml"
    path.write_text(HEADER, encoding="utf-8")
    with pytest.raises(yaml_reader.FileProblem, match="larger than"):
        yaml_reader.read_limited(path, 4)  # the stat passes a limit that the read then exceeds: same refusal
    assert yaml_reader.read_limited(path, len(HEADER)) == HEADER.encode()


def test_includes_count_toward_one_byte_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    frag = "machinedesc: 1\nparams: {x: 1}\n"
    (tmp_path / "frag.yaml").write_text(frag, encoding="utf-8")
    top = HEADER + "include: [frag.yaml, frag.yaml, frag.yaml]\n"
    (tmp_path / "top.yaml").write_text(top, encoding="utf-8")
    monkeypatch.setattr(includes, "MAX_BOARD_BYTES", len(top) + 2 * len(frag))
    with pytest.raises(BoardError) as err:
        load_document(tmp_path / "top.yaml")
    assert "the board and the files it includes hold more than" in str(err.value)
    assert f"included from {tmp_path / 'top.yaml'}:3:33" in str(err.value)
    monkeypatch.setattr(includes, "MAX_BOARD_BYTES", len(top) + 3 * len(frag))
    assert load_document(tmp_path / "top.yaml").tree["params"] == {"x": 1}


# ---------------------------------------------------------------- includes: read once, capped


def test_each_file_is_read_and_parsed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "leaf.yaml").write_text("machinedesc: 1\nparams: {x: 1}\n", encoding="utf-8")
    (tmp_path / "mid.yaml").write_text("machinedesc: 1\ninclude: [leaf.yaml, leaf.yaml]\n", encoding="utf-8")
    (tmp_path / "top.yaml").write_text(HEADER + "include: [mid.yaml, mid.yaml, leaf.yaml]\n", encoding="utf-8")
    reads: list[str] = []
    real_read = yaml_reader.read_limited

    def counting_read(path: Path, limit: int) -> bytes:
        reads.append(path.name)
        return real_read(path, limit)

    monkeypatch.setattr(yaml_reader, "read_limited", counting_read)
    doc = load_document(tmp_path / "top.yaml")
    assert sorted(reads) == ["leaf.yaml", "mid.yaml", "top.yaml"]
    assert [p.name for p in doc.files] == ["top.yaml", "mid.yaml", "leaf.yaml"]


def test_a_file_included_twice_keeps_each_include_chain(tmp_path: Path) -> None:
    """The second inclusion's values name the second include site (a copy, not the first parse)."""
    (tmp_path / "frag.yaml").write_text("machinedesc: 1\nparams: {x: 1}\n", encoding="utf-8")
    (tmp_path / "top.yaml").write_text(HEADER + "include:\n  - frag.yaml\n  - frag.yaml\n", encoding="utf-8")
    tree = load_document(tmp_path / "top.yaml").tree
    loc = located.location_of(tree, ("params", "x"))
    assert loc is not None and [str(c) for c in loc.chain] == [f"{tmp_path / 'top.yaml'}:5:5"]


def test_include_limit_edge(tmp_path: Path) -> None:
    (tmp_path / "frag.yaml").write_text("machinedesc: 1\nparams: {x: 1}\n", encoding="utf-8")

    def board(n: int) -> Path:
        path = tmp_path / f"top{n}.yaml"
        path.write_text(HEADER + "include:\n" + "  - frag.yaml\n" * n, encoding="utf-8")
        return path
    start = time.monotonic()
    assert load_document(board(includes.MAX_INCLUDES)).tree["params"] == {"x": 1}
    with pytest.raises(BoardError, match="more than 1,000 extends/include entries"):
        load_document(board(20_000))
    assert time.monotonic() - start < 10


def test_include_fan_out_stops_quickly(tmp_path: Path) -> None:
    """8 wide and 7 deep: 2.4 million include entries; refused after the first thousand."""
    for depth in range(7):
        inc = f"include: [{', '.join([f'f{depth + 1}.yaml'] * 8)}]\n" if depth < 6 else ""
        (tmp_path / f"f{depth}.yaml").write_text(f"machinedesc: 1\n{inc}params: {{p{depth}: 1}}\n", encoding="utf-8")
    (tmp_path / "top.yaml").write_text(HEADER + "include: [f0.yaml]\n", encoding="utf-8")
    start = time.monotonic()
    with pytest.raises(BoardError, match="more than 1,000"):
        load_document(tmp_path / "top.yaml")
    assert time.monotonic() - start < 10


# ---------------------------------------------------------------- YAML details


def test_non_specific_tag_gives_a_string() -> None:
    tree = parse_text("a: ! 0x1000\nb: ! true\nc: ! [1]\nd: 0x1000\n", "x.yaml")
    assert tree == {"a": "0x1000", "b": "true", "c": [1], "d": 4096}


def test_a_long_numeric_key_stays_text() -> None:
    key = "9" * 1000  # an implicit key has at most 1,024 characters
    assert parse_text(f"{key}: 1\n", "x.yaml") == {key: 1}


def test_leading_zeros_do_not_count_as_digits() -> None:
    assert parse_text("a: " + "0" * 5000 + "7\nb: 0x" + "0" * 100 + "1\n", "x.yaml") == {"a": 7, "b": 1}


@pytest.mark.parametrize("char,line,col", [("\x00", 2, 4), ("\x0b", 2, 4), ("\x1c", 2, 4), ("\x85", 2, 4),
                                           ("\u2028", 2, 4), ("\ufffe", 2, 4), ("\x7f", 2, 4)])
def test_refused_characters_are_located(char: str, line: int, col: int) -> None:
    with pytest.raises(BoardError) as err:
        parse_text(f"a: 1\n# é{char}\nb: 2\n", "x.yaml")
    assert str(err.value).startswith(f"x.yaml:{line}:{col}: character U+{ord(char):04X} ")


def test_characters_yaml_allows_pass() -> None:
    assert parse_text("a: \"tab\there é \u00a0 \U0001f600\"\n# \ufeff\n", "x.yaml") == {
        "a": "tab\there é \u00a0 \U0001f600"}


def test_carriage_returns_are_line_breaks_as_before(tmp_path: Path) -> None:
    path = tmp_path / "crlf.yaml"
    path.write_bytes(b"machinedesc: 1\r\nsystem: riscv64\rfoo: [\r\n")
    with pytest.raises(BoardError) as err:
        load_document(path)
    assert f"{path}:4:1: YAML syntax error" in str(err.value)


# ---------------------------------------------------------------- messages


def test_messages_escape_control_characters() -> None:
    problem = Problem(SourceLocation("b\x1b.yaml", 1, 2), "components.a\x07", "id 'x\x1b[2J\u202e' \n bad", "h\x9b")
    assert problem.render() == "b\\x1b.yaml:1:2: components.a\\x07: id 'x\\x1b[2J\\u202e' \\n bad\n  hint: h\\x9b"
    assert printable("plain text, é, 😀") == "plain text, é, 😀"


def test_huge_message_lines_are_shortened() -> None:
    line = printable("x" * 10_000)
    assert len(line) < 1100 and "(9,100 characters left out)" in line


def test_problems_of_one_kind_are_counted_after_ten() -> None:
    problems = [Problem(SourceLocation("b.yaml", 3, 3), "components.d", f"duplicate component id 'd{i:05}'")
                for i in range(100_000)]
    problems.append(Problem(SourceLocation("b.yaml", 9, 1), "wiring", "other"))
    text = str(BoardError(problems))
    lines = text.splitlines()
    assert len(lines) == MAX_PER_KIND + 2
    assert lines[MAX_PER_KIND] == "... and 99,990 more errors like: duplicate component id '…'"
    assert lines[-1] == "b.yaml:9:1: wiring: other"
    assert text == str(BoardError(list(reversed(problems))))  # order-independent


def test_a_count_entry_with_many_errors_prints_little(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "b.yaml").write_text(HEADER + "components:\n  dev${i // 100000}:\n    count: 20000\n"
                                     "    type: vendor-dev\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, out, err = validate(["b.yaml"], capsys)
    assert (code, out) == (2, "")
    assert len(err) < 3000
    assert "... and 19,989 more errors like: copies i=… and i=… both get the id '…'" in err


def test_hints_stop_when_the_load_has_spent_its_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """3,000 references to missing ids among 3,000 ids: hints until the budget is spent, then none."""
    # A made-up type on a system without a type database: only the references are wrong.
    (tmp_path / "b.yaml").write_text("machinedesc: 1\nsystem: vendor\ncomponents:\n" + "".join(
        f"  dev{i}: {{type: vendor-dev, parent: dve{i}}}\n" for i in range(3000)), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    start = time.monotonic()
    code, _, err = validate(["b.yaml"], capsys)
    assert code == 2 and time.monotonic() - start < 30
    assert "did you mean 'dev0'?" in err
    assert "... and 2,990 more errors like: parent '…' is not a component" in err
    # The budget is the load's (errors.Hints, passed down from the pipeline): the first
    # references get hints, the last do not; the next load starts with a full budget.
    from machinedesc.plan.pipeline import load_board

    for _ in range(2):
        with pytest.raises(BoardError) as exc:
            load_board(tmp_path / "b.yaml")
        hinted = [(p.hint or "").startswith("did you mean") for p in exc.value.problems]
        assert hinted[0] and not hinted[-1]


def test_undecodable_bytes_are_located_in_lines_and_characters(tmp_path: Path) -> None:
    path = tmp_path / "b.yaml"
    path.write_bytes(b"machinedesc: 1\rsystem: riscv64\r\n# \xc3\xa9\xc3\xa9 \xff\n")
    with pytest.raises(BoardError) as err:
        load_document(path)
    assert str(err.value).startswith(f"{path}:3:6: not UTF-8 text (invalid start byte)")


def test_ok_line_escapes_the_file_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "b\x1b[2J.yaml").write_text(HEADER, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert validate(["b\x1b[2J.yaml"], capsys) == (0, "b\\x1b[2J.yaml: ok\n", "")


def test_include_chains_are_bounded_and_errors_deep_in_them_are_fast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A chain of 999 includes raised RecursionError; an error 40 files deep took for ever to report
    (each include site carried its own chain, so hashing a location was exponential in the depth)."""
    from machinedesc.cli import main

    for d in range(999):
        (tmp_path / f"c{d}.yaml").write_text(f"machinedesc: 1\ninclude: c{d + 1}.yaml\n")
    (tmp_path / "c999.yaml").write_text("machinedesc: 1\nsystem: riscv64\n")
    for d in range(40):
        (tmp_path / f"e{d}.yaml").write_text(f"machinedesc: 1\ninclude: e{d + 1}.yaml\n")
    (tmp_path / "e40.yaml").write_text("machinedesc: 1\nsystem: riscv64\nbogus: 1\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        main(["validate", "c0.yaml", "e0.yaml"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "Traceback" not in err
    assert "c63.yaml:2:10: include: extends/include chains deeper than 64 files" in err
    assert "e40.yaml:3:1" in err and err.count("included from") >= 40 + 63


def _plan_to_fifo(tmp_path: Path) -> tuple[subprocess.Popen[str], Path]:
    fifo = tmp_path / "plan.fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen([sys.executable, "-m", "machinedesc", "plan", str(ROOT / "boards" / "soc.yaml"),
                             "-o", str(fifo)], stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "MACHINEDESC_CACHE": str(tmp_path / "cache")})
    assert proc.stderr is not None
    # Without a reader the write waits, as `plan > fifo` would, and says so (it used to hang silently).
    assert proc.stderr.readline() == f"machinedesc: waiting for a process to read the FIFO {fifo} (Ctrl-C to stop)\n"
    return proc, fifo


def test_plan_to_a_fifo_waits_for_its_reader_and_says_so(tmp_path: Path) -> None:
    proc, fifo = _plan_to_fifo(tmp_path)
    with fifo.open() as reader:
        text = reader.read()
    assert proc.wait(timeout=60) == 0
    assert proc.stderr is not None
    proc.stderr.close()
    assert text.startswith("# machinedesc plan, format 1\n") and "device_add" in text
    assert fifo.is_fifo() and sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == ["plan.fifo"]


def test_ctrl_c_while_waiting_for_a_fifo_reader_leaves_nothing(tmp_path: Path) -> None:
    import signal

    proc, fifo = _plan_to_fifo(tmp_path)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    assert proc.stderr is not None
    with proc.stderr:
        assert "Traceback" not in proc.stderr.read()
    assert fifo.is_fifo() and sorted(p.name for p in tmp_path.iterdir() if p.name != "cache") == ["plan.fifo"]
